# The values users of the examples set, for `packer validate` in the tests
# and the demo (scripts/validate-examples.sh makes the files under
# build/validate). Every variable an example declares without a default
# needs its value here.
winrm_password     = "Example-Passw0rd"
iso                = "build/standin/winbake-standin.iso"
cloudbase_init_msi = "build/validate/CloudbaseInitSetup_Stable_x64.msi"
# winbake-updates checks at validate that every glob matches a package.
updates_dir = "build/validate/updates"
