complete -c picomon-watchdog -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon-watchdog -l hang-timeout -d 'Consider picomon hung when it reports no tick for this many seconds [default: 3 × base_tick, at least 30]' -r
complete -c picomon-watchdog -l picomon -d 'The picomon to run [default: the one next to this program, else the one on PATH]' -r -F
complete -c picomon-watchdog -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon-watchdog -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon-watchdog -s V -l version -d 'Print version'
