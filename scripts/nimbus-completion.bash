# shellcheck shell=bash
# Bash completion for nimbus: the commands, each command's options, and VM
# names from nimbusd (`nimbus list --all --name`, with the line's --connect).
# Everything is asked of the nimbus binary being completed (its --help
# texts), so the completion never lags behind it.
#
#   source scripts/nimbus-completion.bash            # this shell
#   cp scripts/nimbus-completion.bash /usr/share/bash-completion/completions/nimbus
#   complete -F _nimbus build/nimbus                 # a binary not on PATH

# The VM names nimbusd knows; $1 is the nimbus binary, then --connect PATH
# if the line has one.
_nimbus_vms() {
    "$1" list --all --name "${@:2}" 2>/dev/null
}

_nimbus() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local nimbus=${COMP_WORDS[0]} words=""
    COMPREPLY=()
    if [ "$COMP_CWORD" -eq 1 ]; then
        # The command table of `nimbus --help`: "  name   summary" lines.
        words=$("$nimbus" --help 2>/dev/null | awk '/^  [a-z]/ { print $1 }')
        mapfile -t COMPREPLY < <(compgen -W "$words --help --version" -- "$cur")
        return
    fi
    local cmd=${COMP_WORDS[1]}
    case $prev in
    --connect | --dest-connect | --api | --kernel | --initrd | --bios | --disk | --dump-dtb | --console)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
        ;;
    esac
    if [[ $cur == -* ]]; then
        words=$("$nimbus" "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
        mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
        return
    fi
    case $cmd in
    info | start | save | undefine | console | logs | pause | resume | shutdown | destroy | migrate)
        local i connect=()
        for ((i = 2; i < COMP_CWORD - 1; i++)); do
            if [ "${COMP_WORDS[i]}" = --connect ]; then
                connect=(--connect "${COMP_WORDS[i + 1]}")
            fi
        done
        words=$(_nimbus_vms "$nimbus" "${connect[@]}")
        mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
        ;;
    list | top | status | reset | counters | events | balloon) ;;
    *)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        ;;
    esac
}

complete -F _nimbus nimbus
