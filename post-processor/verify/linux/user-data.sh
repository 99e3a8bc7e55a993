#!/bin/sh
# winbake-verify's user data: cloud-init's scripts_user runs it once, as
# root, late in the first boot. It leaves the instance's UUID where the
# check reads it back over SSH.
echo '@UUID@' >/var/tmp/winbake-verify-user-data
