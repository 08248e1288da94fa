#!/bin/bash
# description: 100-tick server settings (rates and tickrate cvars) in cfg/tickrate100.cfg; exec it from the blueprint's config
#
# Runs in left4me's build sandbox: /overlay is the layer being built (it
# ends up at the game's root). The game only runs at 100 tick with a
# tickrate enabler plugin and -tickrate 100 in the blueprint's arguments;
# these cvars make clients and the server use the higher rates.
set -euo pipefail

mkdir -p /overlay/left4dead2/cfg
cat > /overlay/left4dead2/cfg/tickrate100.cfg <<'CFG'
// Written by left4me's tickrate-100 build script.
sv_minrate 100000
sv_maxrate 100000
sv_minupdaterate 100
sv_maxupdaterate 100
sv_mincmdrate 100
sv_maxcmdrate 100
sv_client_min_interp_ratio -1
sv_client_max_interp_ratio 2
net_splitpacket_maxrate 50000
fps_max 0
nb_update_frequency 0.024
CFG
echo "wrote left4dead2/cfg/tickrate100.cfg"
