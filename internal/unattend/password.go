package unattend

import (
	"encoding/base64"
	"unicode/utf16"
)

// Suffixes Windows Setup appends to a password before it is base64-encoded
// for an answer file with PlainText=false ("hide sensitive data" in Windows
// System Image Manager). Microsoft's UserAccounts reference shows both: its
// AdministratorPassword example decodes to "pw" + "AdministratorPassword" and
// its LocalAccount example to "password" + "Password". AutoLogon passwords use
// the "Password" suffix like local accounts.
const (
	AdministratorPasswordSuffix = "AdministratorPassword"
	PasswordSuffix              = "Password"
)

// EncodePassword returns base64(UTF-16LE(password + suffix)), the value of a
// <Value> element whose <PlainText> is false. This is obfuscation, not
// encryption: anyone with the answer file can recover the password.
func EncodePassword(password, suffix string) string {
	u := utf16.Encode([]rune(password + suffix))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// EncodeAdministratorPassword encodes a UserAccounts/AdministratorPassword.
func EncodeAdministratorPassword(password string) string {
	return EncodePassword(password, AdministratorPasswordSuffix)
}

// EncodeUserPassword encodes a LocalAccount or AutoLogon password.
func EncodeUserPassword(password string) string {
	return EncodePassword(password, PasswordSuffix)
}
