#!/bin/bash
# description: Metamod:Source and SourceMod (stable branches, latest Linux builds) from alliedmods.net
#
# Runs in left4me's build sandbox: /overlay is the layer being built (it
# ends up at the game's root) and /tmp is private and empty. It downloads,
# so the build needs network access. Rebuild to fetch the newest builds.
set -euo pipefail

MM_BRANCH=1.12
SM_BRANCH=1.12
MM_DROP="https://mms.alliedmods.net/mmsdrop/$MM_BRANCH"
SM_DROP="https://sm.alliedmods.net/smdrop/$SM_BRANCH"

# Each drop names its newest Linux build in a small "latest" file.
fetch_latest() {
    local drop=$1 pointer=$2 name
    if ! name=$(curl -fsSL --retry 3 "$drop/$pointer"); then
        echo "cannot reach $drop: this script needs a build sandbox with network access" >&2
        exit 1
    fi
    # A plain archive name, nothing that could climb out of /tmp.
    if [[ ! $name =~ ^[A-Za-z0-9._-]+\.tar\.gz$ ]]; then
        echo "unexpected answer from $drop/$pointer: $name" >&2
        exit 1
    fi
    echo "downloading $drop/$name"
    curl -fsSL --retry 3 -o "/tmp/$name" "$drop/$name"
    tar -xzf "/tmp/$name" -C /overlay/left4dead2
}

mkdir -p /overlay/left4dead2
fetch_latest "$MM_DROP" mmsource-latest-linux
fetch_latest "$SM_DROP" sourcemod-latest-linux

# Both archives unpack into addons/: a missing folder means the layout changed.
test -d /overlay/left4dead2/addons/metamod
test -d /overlay/left4dead2/addons/sourcemod
echo "installed Metamod:Source $MM_BRANCH and SourceMod $SM_BRANCH into left4dead2/addons"
