complete -c logoff -l server -d 'Act on this server over ssh instead of the local host (/SERVER:servername); several may be given, repeated or comma-separated ([user@]host[:port])' -r
complete -c logoff -l servers-file -d 'Read servers from FILE, one per line (# starts a comment)' -r
complete -c logoff -l parallel -d 'How many servers to work on at once' -r
complete -c logoff -l connect-timeout -d 'Give up on a server that does not answer within DURATION' -r
complete -c logoff -l machine -d 'Target this container or VM registered with systemd-machined (/VM:NAME)' -r
complete -c logoff -l timeout -d 'Time between SIGTERM and SIGKILL (30s, 5m, 500ms; 0 = SIGKILL at once)' -r
complete -c logoff -l message -d 'Write TEXT to the terminals of each session before logging it off' -r
complete -c logoff -l grace -d 'Warn, wait DURATION (repeating the message a minute and ten seconds before), then log off; Ctrl-C cancels' -r
complete -c logoff -l user -d 'Only sessions of this user (name or uid; repeatable)' -r
complete -c logoff -l state -d 'Only sessions in this state (repeatable)' -r -f -a "active\t'In the foreground (logind: active on its seat; ssh sessions are active)'
online\t'Logged in, in the background (a virtual terminal not shown)'
closing\t'Ended, with processes left behind (logind\'s closing)'
idle\t'Idle for a minute or more (logind\'s idle hint, or the terminal\'s access time)'
disconnected\t'Processes remain but nothing connects to them: the login has ended and no client reaches the session — no tmux or screen client, forward or socket from a live session of the same user, no input through mosh ([`crate::presence`]). Where that cannot be told, the session is not taken'"
complete -c logoff -l idle-for -d 'Only sessions idle at least DURATION' -r
complete -c logoff -l from -d 'Only sessions that came from HOST or network (10.0.0.0/8), as the system vouches for it' -r
complete -c logoff -l backend -d 'Session backend: logind where it answers on the system bus, else procfs' -r -f -a "auto\t'logind where it answers on the system bus, else procfs'
logind\t''
procfs\t''"
complete -c logoff -l ask-password -d 'Let ssh ask for passwords and passphrases on the terminal (else keys and agents only)'
complete -c logoff -s v -l verbose -d 'Print one line per action performed (/V)'
complete -c logoff -l vm -d 'Log off a session on a server or within a virtual machine; needs a session ID (/VM)'
complete -c logoff -s l -l list -d 'List the sessions instead of logging off'
complete -c logoff -l disconnect -d 'End the sessions\' connections only (an ssh connection, an RDP client), as Remote Desktop\'s disconnect: their programs keep running, their users reconnect (tsdiscon)'
complete -c logoff -l warn-only -d 'Write --message to the sessions\' terminals and displays, and end nothing (as msg)'
complete -c logoff -l json -d 'Print JSON instead of a table or messages'
complete -c logoff -l no-legend -d 'Do not print the header and the "N sessions listed." line'
complete -c logoff -l console -d 'Allow logging off another user\'s console (console, ttyN) session'
complete -c logoff -l remote -d 'Only sessions that came in over the network'
complete -c logoff -l local -d 'Only sessions that did not come in over the network'
complete -c logoff -l all -d 'Every session (but your own, unless named) that passes the filters'
complete -c logoff -l dry-run -d 'Print what would be logged off, and touch nothing'
complete -c logoff -s h -l help -d 'Print help (the seed\'s usage block and every option)'
complete -c logoff -l seed-help -d 'Print the seed\'s usage block (/?, -?)'
complete -c logoff -l version -d 'Print version'
