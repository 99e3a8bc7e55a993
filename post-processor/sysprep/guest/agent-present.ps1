# True when winbake-agent is installed in the guest.
Test-Path -LiteralPath {{ps .Path}}
