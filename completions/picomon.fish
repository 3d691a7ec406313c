# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_picomon_global_optspecs
    string join \n 1/one json c/config= D/debug h/help V/version
end

function __fish_picomon_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_picomon_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_picomon_using_subcommand
    set -l cmd (__fish_picomon_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c picomon -n "__fish_picomon_needs_command" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_needs_command" -s 1 -l one -d 'Run every check once, now and in parallel, print the results and exit (0 when all are OK, 1 otherwise); sends no email'
complete -c picomon -n "__fish_picomon_needs_command" -l json -d 'With --one: print one JSON object per check instead of text'
complete -c picomon -n "__fish_picomon_needs_command" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon -n "__fish_picomon_needs_command" -s V -l version -d 'Print version'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "check-config" -d 'Load and validate every configuration layer, then print a summary'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "migrate" -d 'Print a picomon.py configuration file (`config.py`) as picomon TOML, on standard output'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "status" -d 'Print the running daemon\'s live view: failing checks first (since when, severity, last output, silence), then the others with their last run'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "silence" -d 'Keep back the mail of matching checks for a while (maintenance): they go on running and keeping their state; when the silence ends, each one whose state differs from what was last mailed gets one mail'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "ack" -d 'Acknowledge the outage of the failing checks matching PATTERN: no more reminders (renotify_every) until each recovers; the recovery is still mailed'
complete -c picomon -n "__fish_picomon_needs_command" -f -a "push" -d 'Tell the running daemon a push check\'s result (`type = "push"`), or run COMMAND and tell it when the run starts and how it ended'
complete -c picomon -n "__fish_picomon_using_subcommand check-config" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand check-config" -l dump -d 'Print the merged configuration as TOML instead of the summary'
complete -c picomon -n "__fish_picomon_using_subcommand check-config" -l no-secrets -d 'Do not read smtp_password_file and smtp_ca_file, nor require a password: for checking a configuration where it is built, before its secrets are there'
complete -c picomon -n "__fish_picomon_using_subcommand check-config" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand migrate" -s D -l debug -d 'Log at DEBUG level'
complete -c picomon -n "__fish_picomon_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon -n "__fish_picomon_using_subcommand status" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand status" -l json -d 'Print the view as one JSON object (`instances`: `instance`, `name`, `target`, `standing`, `severity`, `since`, `failed_runs`, `last_run`, `output`, `silenced`, and when set `acked`, `told`, `reminders`; `maintenance`: each window with `until` and `next`; times in seconds since the epoch)'
complete -c picomon -n "__fish_picomon_using_subcommand status" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and not __fish_seen_subcommand_from add list remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and not __fish_seen_subcommand_from add list remove" -f -a "add" -d 'Silence the check instances matching PATTERN for a while; prints the new silence\'s ID and the instances it covers now'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and not __fish_seen_subcommand_from add list remove" -f -a "list" -d 'List the silences in force: ID, pattern, end, reason'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and not __fish_seen_subcommand_from add list remove" -f -a "remove" -d 'End the silence ID now'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from add" -l for -d 'How long, e.g. 30m, 2h, 1day; at most 7 days' -r
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from add" -l reason -d 'Why, for whoever wonders what silenced a check (shown by list and status)' -r
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from add" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from add" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from list" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from list" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from remove" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from remove" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand silence; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c picomon -n "__fish_picomon_using_subcommand ack" -l reason -d 'Why, or who is on it (shown by status)' -r
complete -c picomon -n "__fish_picomon_using_subcommand ack" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand ack" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand ack" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c picomon -n "__fish_picomon_using_subcommand push" -l exit -d 'The result as a Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, any other CRITICAL' -r
complete -c picomon -n "__fish_picomon_using_subcommand push" -l output -d 'The output to record (its first line is the summary a mail shows)' -r
complete -c picomon -n "__fish_picomon_using_subcommand push" -s c -l config -d 'Main configuration file; fragments are read from the directory of the same name with `.d` instead of `.toml`' -r -F
complete -c picomon -n "__fish_picomon_using_subcommand push" -s D -l debug -d 'Log at DEBUG level, whatever `log_level` says'
complete -c picomon -n "__fish_picomon_using_subcommand push" -s h -l help -d 'Print help (see more with \'--help\')'
