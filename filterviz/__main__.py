from filterviz.cli import main

raise SystemExit(main())
