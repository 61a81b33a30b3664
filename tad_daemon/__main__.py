from tad_daemon.cli import main

main()
