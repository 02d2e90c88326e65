from ctid.cli import main

raise SystemExit(main())
