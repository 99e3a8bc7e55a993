package windowssys

import (
	"fmt"
	"strings"
)

// hiveAliases maps the hive names a key path may start with to their short
// form.
var hiveAliases = map[string]string{
	"HKLM": "HKLM", "HKEY_LOCAL_MACHINE": "HKLM",
	"HKCU": "HKCU", "HKEY_CURRENT_USER": "HKCU",
	"HKU": "HKU", "HKEY_USERS": "HKU",
	"HKCR": "HKCR", "HKEY_CLASSES_ROOT": "HKCR",
	"HKCC": "HKCC", "HKEY_CURRENT_CONFIG": "HKCC",
}

// splitKey splits `HKLM\SOFTWARE\Microsoft` into the short hive name
// ("HKLM") and the path below it ("SOFTWARE\Microsoft"). The hive is
// matched case-insensitively; '/' is not a separator (registry key names may
// contain it).
func splitKey(key string) (hive, path string, err error) {
	h, p, _ := strings.Cut(key, `\`)
	hive, ok := hiveAliases[strings.ToUpper(h)]
	if !ok {
		return "", "", fmt.Errorf("registry key %q: unknown hive %q (want HKLM, HKCU, HKU, HKCR or HKCC)", key, h)
	}
	return hive, strings.Trim(p, `\`), nil
}
