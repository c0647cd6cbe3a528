from edge_assistant.cli import main

raise SystemExit(main())
