//! The console command syntax shared by cfg files, RCON and the command line.
//!
//! srcds splits text into commands at newlines and at `;` outside quotes,
//! drops `//` comments outside quotes, and tokenizes each command at
//! whitespace with `"..."` grouping. Commands that take free text (`say`,
//! setting a cvar) use the raw rest of the command instead of the tokens, which
//! is why [`Command::arg_s`] exists: `hostname My Server` sets the whole
//! `My Server`, exactly like srcds.

/// One console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    /// The command or cvar name, lowercased (srcds names are case-insensitive).
    pub(crate) name: String,
    /// The arguments after the name, quotes removed.
    pub(crate) args: Vec<String>,
    /// The raw text after the name, trimmed; quotes kept.
    pub(crate) arg_s: String,
}

impl Command {
    /// The raw argument text with one pair of surrounding quotes removed, the
    /// way srcds computes the new value of a cvar.
    pub(crate) fn value_text(&self) -> &str {
        let s = self.arg_s.as_str();
        match s.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"').unwrap_or(rest),
            None => s,
        }
    }
}

/// Splits console text into commands, skipping comments and empty commands.
pub(crate) fn parse(text: &str) -> Vec<Command> {
    let mut commands = Vec::new();
    for line in text.split('\n') {
        for statement in split_statements(line) {
            if let Some(command) = parse_statement(statement) {
                commands.push(command);
            }
        }
    }
    commands
}

/// Splits one line at `;` outside quotes and cuts it at a `//` comment.
fn split_statements(line: &str) -> Vec<&str> {
    let mut statements = Vec::new();
    let mut in_quote = false;
    let mut start = 0;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => in_quote = !in_quote,
            b';' if !in_quote => {
                statements.push(&line[start..i]);
                start = i + 1;
            }
            b'/' if !in_quote && bytes.get(i + 1) == Some(&b'/') => {
                statements.push(&line[start..i]);
                return statements;
            }
            _ => {}
        }
        i += 1;
    }
    statements.push(&line[start..]);
    statements
}

fn parse_statement(statement: &str) -> Option<Command> {
    let statement = statement.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let (name, rest) = next_token(statement)?;
    let arg_s = rest.trim().to_owned();
    let mut args = Vec::new();
    let mut remaining = rest;
    while let Some((token, after)) = next_token(remaining) {
        args.push(token);
        remaining = after;
    }
    Some(Command {
        name: name.to_ascii_lowercase(),
        args,
        arg_s,
    })
}

/// Reads one token (quoted or bare) and returns it with the remaining text.
fn next_token(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    if let Some(quoted) = text.strip_prefix('"') {
        return Some(match quoted.find('"') {
            Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
            // An unterminated quote runs to the end of the command, as in srcds.
            None => (quoted.to_owned(), ""),
        });
    }
    let end = text
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(text.len());
    Some((text[..end].to_owned(), &text[end..]))
}

/// Quotes an argument for re-parsing when it needs it (command-line values
/// arrive already split by the shell).
pub(crate) fn quote_arg(arg: &str) -> String {
    if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == ';' || c == '/') {
        format!("\"{}\"", arg.replace('"', ""))
    } else {
        arg.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        parse(text).into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn comments_semicolons_and_quotes() {
        let text = "hostname \"My // Server; x\" // comment\n\
                    sv_cheats 0; exec \"other\"\r\n// only comment\n\n  ;;";
        let commands = parse(text);
        assert_eq!(names(text), ["hostname", "sv_cheats", "exec"]);
        assert_eq!(commands[0].args, ["My // Server; x"]);
        assert_eq!(commands[0].value_text(), "My // Server; x");
        assert_eq!(commands[1].value_text(), "0");
        assert_eq!(commands[2].args, ["other"]);
    }

    #[test]
    fn unquoted_value_keeps_spaces_like_srcds() {
        let command = &parse("HOSTNAME  My Cool   Server  ")[0];
        assert_eq!(command.name, "hostname");
        assert_eq!(command.value_text(), "My Cool   Server");
        assert_eq!(command.args, ["My", "Cool", "Server"]);
    }

    #[test]
    fn unterminated_quote_and_garbage() {
        let command = &parse("say \"hello there")[0];
        assert_eq!(command.args, ["hello there"]);
        assert_eq!(command.value_text(), "hello there");
        assert!(parse("\0\0").is_empty());
        assert_eq!(parse("\"\"")[0].name, "");
    }

    #[test]
    fn quoting_round_trips() {
        let line = format!("hostname {}", quote_arg("A b"));
        assert_eq!(parse(&line)[0].value_text(), "A b");
        assert_eq!(quote_arg("plain"), "plain");
        assert_eq!(quote_arg(""), "\"\"");
    }
}
