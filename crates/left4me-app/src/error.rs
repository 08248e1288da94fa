//! What an operation answers when it does not do what was asked: one
//! typed error that the pages, the API and the schedulers each present
//! in their own way.

use std::fmt;

/// A mistake in one field of the input, said so the user can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The input's field, as the form and the API name it.
    pub field: &'static str,
    pub message: String,
}

/// The mistakes of one input, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    /// The message of `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Missing, or not the actor's to see (never tell which).
    #[error("not found")]
    NotFound,
    /// Missing, with a word on what to do (where there is nothing to hide).
    #[error("{0}")]
    NotFoundBecause(String),
    /// Seen but not the actor's to do, with the reason.
    #[error("{0}")]
    Forbidden(String),
    /// The input has mistakes, each named by its field.
    #[error("{0}")]
    Invalid(FieldErrors),
    /// The input is wrong as a whole (no one field to blame).
    #[error("{0}")]
    BadRequest(String),
    /// It clashes with what is there; `field` is the input that clashes,
    /// where one does.
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<&'static str>,
    },
    #[error("{0}")]
    TooLarge(String),
    /// Not signed in, or the credentials were wrong.
    #[error("{0}")]
    Unauthenticated(String),
    /// Slowed down after failures: try again after `retry_after`.
    #[error("{message}")]
    TooManyAttempts {
        message: String,
        retry_after: std::time::Duration,
    },
    /// Our fault, not the caller's: the cause is logged, never shown.
    #[error("{context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub type OpResult<T> = Result<T, OpError>;

impl OpError {
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            field: None,
        }
    }

    /// One field's mistake.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        Self::Invalid(errors)
    }

    /// An internal failure, keeping `source` for the log.
    pub fn internal(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The error and its causes, one after the other: what the log shows.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

impl From<left4me_store::StoreError> for OpError {
    fn from(err: left4me_store::StoreError) -> Self {
        use left4me_store::StoreError;
        match err {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(message) => Self::conflict(message),
            other => Self::internal("the database", other),
        }
    }
}

impl From<left4me_files::FilesError> for OpError {
    fn from(err: left4me_files::FilesError) -> Self {
        use left4me_files::FilesError;
        match err {
            FilesError::Io { .. } => Self::internal("the overlay's files", err),
            FilesError::AlreadyExists(_) => Self::conflict(err.to_string()),
            FilesError::FileTooLarge { .. } | FilesError::ZipTooLarge { .. } => {
                Self::TooLarge(err.to_string())
            }
            other => Self::BadRequest(other.to_string()),
        }
    }
}

impl From<crate::board::BoardError> for OpError {
    fn from(err: crate::board::BoardError) -> Self {
        Self::internal("the server list", err)
    }
}

impl From<tokio::task::JoinError> for OpError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal("a blocking task", err)
    }
}
