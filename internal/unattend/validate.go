package unattend

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// HCL field names used in validation errors.
const (
	FieldImageName            = "image_name"
	FieldProductKey           = "product_key"
	FieldUILanguage           = "ui_language"
	FieldInputLocale          = "input_locale"
	FieldSystemLocale         = "system_locale"
	FieldUserLocale           = "user_locale"
	FieldTimeZone             = "time_zone"
	FieldComputerName         = "computer_name"
	FieldRecoveryPartition    = "recovery_partition_size"
	FieldVirtioDriverDrives   = "virtio_driver_drives"
	FieldExtraCommands        = "unattend_extra_commands"
	FieldTemplate             = "unattend_template"
	FieldUsername             = "winrm_username"
	FieldPassword             = "winrm_password"
	FieldFirmware             = "firmware"
	FieldDiskSize             = "disk_size"
	FieldArchitecture         = "architecture"
	FieldVirtioFolder         = "virtio_folder"
	FieldVirtioArchFolder     = "virtio_arch_folder"
	FieldVirtioDrivers        = "virtio_drivers"
	FieldFullName             = "full_name"
	FieldOrganization         = "organization"
	FieldAutoLogonCount       = "autologon_count"
	maxCommandLineLength      = 1024 // FirstLogonCommands CommandLine limit
	maxPasswordLength         = 127  // longest password Windows accepts in its UI and answer files
	maxUsernameLength         = 20   // SAM account name limit
	maxImageNameLength        = 256
	maxFreeTextLength         = 256
	productKeyAlphabet        = "BCDFGHJKMNPQRTVWXY2346789"
	maxAutoLogonCount         = 999
	productKeyAcceptedMessage = "expected 5 groups of 5 characters separated by hyphens (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX) " +
		"using only the product-key alphabet " + productKeyAlphabet
)

// FieldError is a validation error for one HCL field.
type FieldError struct {
	// Field is the HCL name of the field, e.g. "product_key"; for list
	// items it carries the index, e.g. "unattend_extra_commands[2]".
	Field string
	// Msg says what is wrong and what is accepted.
	Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks s (after WithDefaults) and returns every problem found,
// joined with errors.Join; each one is a *FieldError. It returns nil when s
// can be rendered.
func (s Settings) Validate() error {
	return errors.Join(s.Problems()...)
}

// Problems is Validate as a slice: one *FieldError per problem.
func (s Settings) Problems() []error {
	orig := s
	s = s.WithDefaults()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(ValidateArchitecture(s.Architecture))
	add(ValidateFirmware(string(s.Firmware)))
	errs = append(errs, s.WinRM.problems()...)
	add(ValidateImageName(s.ImageName))
	add(ValidateProductKey(s.ProductKey))
	add(ValidateText(FieldFullName, s.FullName, maxFreeTextLength))
	add(ValidateText(FieldOrganization, s.Organization, maxFreeTextLength))
	// The other locales default to ui_language: a bad ui_language is
	// reported once, not once per field that inherited it.
	uiErr := ValidateLanguageTag(FieldUILanguage, s.UILanguage)
	add(uiErr)
	if orig.InputLocale != "" || uiErr == nil {
		add(ValidateInputLocale(s.InputLocale))
	}
	if orig.SystemLocale != "" || uiErr == nil {
		add(ValidateLanguageTag(FieldSystemLocale, s.SystemLocale))
	}
	if orig.UserLocale != "" || uiErr == nil {
		add(ValidateLanguageTag(FieldUserLocale, s.UserLocale))
	}
	add(ValidateTimeZone(s.TimeZone))
	add(ValidateComputerName(s.ComputerName))
	if s.Firmware == FirmwareBIOS || s.Firmware == FirmwareUEFI {
		add(ValidateRecoveryPartition(s.Firmware, s.RecoveryPartitionMB))
	}
	if s.VirtioFolder != "" {
		add(ValidateVirtioFolder(s.VirtioFolder))
		add(ValidateVirtioArchFolder(s.VirtioArchFolder))
		add(ValidateDriveLetters(s.VirtioDrives))
		add(validateDriverNames(s.VirtioDrivers))
	}
	add(ValidateUsername(s.Username))
	add(ValidatePassword(s.Password))
	if s.AutoLogonCount < 1 || s.AutoLogonCount > maxAutoLogonCount {
		add(fieldErr(FieldAutoLogonCount, "%d is out of range: accepted are 1 to %d logons", s.AutoLogonCount, maxAutoLogonCount))
	}
	for i, c := range s.ExtraCommands {
		add(ValidateCommand(i, c))
	}
	return errs
}

// ValidateText checks that v can be carried by an XML 1.0 answer file as a
// single line of text: valid UTF-8, no control characters (U+0000–U+001F,
// U+007F–U+009F, which XML 1.0 either forbids or Windows Setup would not
// accept in a one-line value) and no non-characters (U+FFFE, U+FFFF). A
// maxLen > 0 also limits the length in characters. Empty is accepted.
func ValidateText(field, v string, maxLen int) error {
	if !utf8.ValidString(v) {
		return fieldErr(field, "is not valid UTF-8 text: only Unicode text can be written to the answer file")
	}
	for i, r := range v {
		if isControl(r) {
			return fieldErr(field, "contains the control character U+%04X at byte %d: XML 1.0 answer files cannot carry control characters (tabs and line breaks included); only printable text is accepted", r, i)
		}
		if r == 0xFFFE || r == 0xFFFF {
			return fieldErr(field, "contains the non-character U+%04X at byte %d, which XML 1.0 forbids; only printable text is accepted", r, i)
		}
	}
	if maxLen > 0 && utf8.RuneCountInString(v) > maxLen {
		return fieldErr(field, "is %d characters long: at most %d are accepted", utf8.RuneCountInString(v), maxLen)
	}
	return nil
}

func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7F && r <= 0x9F)
}

// ValidateArchitecture accepts amd64, arm64 and x86.
func ValidateArchitecture(v string) error {
	switch v {
	case ArchAMD64, ArchARM64, ArchX86:
		return nil
	}
	return fieldErr(FieldArchitecture, "%q is not supported: accepted are %q, %q and %q", v, ArchAMD64, ArchARM64, ArchX86)
}

// ValidateFirmware accepts "bios" and "uefi".
func ValidateFirmware(v string) error {
	switch Firmware(v) {
	case FirmwareBIOS, FirmwareUEFI:
		return nil
	}
	return fieldErr(FieldFirmware, "%q is not supported: accepted are %q and %q", v, FirmwareBIOS, FirmwareUEFI)
}

// ValidateImageName requires a non-empty single line of text.
func ValidateImageName(v string) error {
	if strings.TrimSpace(v) == "" {
		return fieldErr(FieldImageName, "is required: the name of the image in install.wim, e.g. \"Windows Server 2022 SERVERDATACENTER\"")
	}
	return ValidateText(FieldImageName, v, maxImageNameLength)
}

var productKeyRE = regexp.MustCompile(`^[` + productKeyAlphabet + `]{5}(-[` + productKeyAlphabet + `]{5}){4}$`)

// ValidateProductKey accepts "" (no key) or five hyphen-separated groups of
// five upper-case characters from the product-key alphabet. The key itself is
// never echoed in the error.
func ValidateProductKey(v string) error {
	if v == "" || productKeyRE.MatchString(v) {
		return nil
	}
	return fieldErr(FieldProductKey, "is not a product key: %s, upper case, or empty for media that need no key", productKeyAcceptedMessage)
}

var (
	languageTagRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Z][a-z]{3})?-([A-Z]{2}|[0-9]{3})$`)
	keyboardIDRE  = regexp.MustCompile(`^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{8}$`)
	imeIDRE       = regexp.MustCompile(`^[0-9A-Fa-f]{4}:\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}$`)
)

const languageTagAccepted = `a language tag such as "en-US", "de-DE", "es-419" or "sr-Latn-RS" ` +
	`(lower-case language, optional title-case script, upper-case region or 3-digit area)`

// ValidateLanguageTag accepts Windows language names such as "en-US",
// "es-419" or "sr-Latn-RS".
func ValidateLanguageTag(field, v string) error {
	if languageTagRE.MatchString(v) {
		return nil
	}
	return fieldErr(field, "%q is not accepted: expected %s", v, languageTagAccepted)
}

// ValidateInputLocale accepts one or more (separated by ";") language tags,
// keyboard identifiers "0409:00000409" or IME identifiers
// "0411:{GUID}{GUID}".
func ValidateInputLocale(v string) error {
	if v == "" {
		return fieldErr(FieldInputLocale, "must not be empty: expected %s, or a keyboard identifier such as \"0409:00000409\"", languageTagAccepted)
	}
	for _, item := range strings.Split(v, ";") {
		if languageTagRE.MatchString(item) || keyboardIDRE.MatchString(item) || imeIDRE.MatchString(item) {
			continue
		}
		return fieldErr(FieldInputLocale, "%q is not accepted: expected %s, a keyboard identifier such as \"0409:00000409\" "+
			"or an IME identifier \"0411:{GUID}{GUID}\"; several are separated by \";\"", item, languageTagAccepted)
	}
	return nil
}

// ValidateTimeZone accepts a Windows time zone ID (see TimeZones), matched
// exactly; a case-insensitive match is reported with the right spelling.
func ValidateTimeZone(v string) error {
	if v == "" {
		return fieldErr(FieldTimeZone, "must not be empty: expected a Windows time zone ID such as \"UTC\" or \"W. Europe Standard Time\" (tzutil /l lists them)")
	}
	if IsTimeZone(v) {
		return nil
	}
	if canon, ok := timeZoneFold(v); ok {
		return fieldErr(FieldTimeZone, "%q is not a Windows time zone ID: did you mean %q? (IDs are case-sensitive)", v, canon)
	}
	return fieldErr(FieldTimeZone, "%q is not a Windows time zone ID: expected an ID such as \"UTC\", \"Pacific Standard Time\" or \"W. Europe Standard Time\" (tzutil /l lists them; IANA names like \"Europe/Berlin\" are not accepted)", v)
}

var computerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,15}$`)

// ValidateComputerName accepts "*" (Windows picks a random name) or 1–15
// letters, digits and hyphens, not only digits, not starting or ending with a
// hyphen.
func ValidateComputerName(v string) error {
	const accepted = `accepted are "*" (random name) or 1 to 15 letters, digits and hyphens, not only digits, not starting or ending with a hyphen`
	if v == "*" {
		return nil
	}
	if !computerNameRE.MatchString(v) {
		if utf8.RuneCountInString(v) > 15 {
			return fieldErr(FieldComputerName, "%q is %d characters long: %s", v, utf8.RuneCountInString(v), accepted)
		}
		return fieldErr(FieldComputerName, "%q is not a valid computer name: %s", v, accepted)
	}
	if strings.Trim(v, "0123456789") == "" {
		return fieldErr(FieldComputerName, "%q consists only of digits: %s", v, accepted)
	}
	if strings.HasPrefix(v, "-") || strings.HasSuffix(v, "-") {
		return fieldErr(FieldComputerName, "%q starts or ends with a hyphen: %s", v, accepted)
	}
	return nil
}

// ValidateRecoveryPartition accepts 0 (no recovery partition) or, with UEFI
// firmware, MinRecoveryPartitionMB to MaxRecoveryPartitionMB.
func ValidateRecoveryPartition(fw Firmware, mb int) error {
	if mb == 0 {
		return nil
	}
	if mb < 0 {
		return fieldErr(FieldRecoveryPartition, "%d is negative: accepted are 0 (no recovery partition) or %d to %d MB", mb, MinRecoveryPartitionMB, MaxRecoveryPartitionMB)
	}
	if fw != FirmwareUEFI {
		return fieldErr(FieldRecoveryPartition, "a recovery partition is only supported with firmware \"uefi\" (GPT); with %q set it to 0", fw)
	}
	if mb < MinRecoveryPartitionMB || mb > MaxRecoveryPartitionMB {
		return fieldErr(FieldRecoveryPartition, "%d MB is out of range: accepted are 0 (no recovery partition) or %d to %d MB (Windows RE needs at least %d MB)", mb, MinRecoveryPartitionMB, MaxRecoveryPartitionMB, MinRecoveryPartitionMB)
	}
	return nil
}

// ValidateDriveLetters accepts a non-empty list of distinct upper-case drive
// letters A–Z other than X (the Windows PE system drive).
func ValidateDriveLetters(v []string) error {
	const accepted = `accepted are single upper-case drive letters A to Z, without ":", except X (the Windows PE system drive), each at most once`
	if len(v) == 0 {
		return fieldErr(FieldVirtioDriverDrives, "must not be empty: %s", accepted)
	}
	seen := map[string]bool{}
	for i, d := range v {
		field := fmt.Sprintf("%s[%d]", FieldVirtioDriverDrives, i)
		if len(d) != 1 || d[0] < 'A' || d[0] > 'Z' {
			return fieldErr(field, "%q is not a drive letter: %s", d, accepted)
		}
		if d == "X" {
			return fieldErr(field, "\"X\" is the Windows PE system drive: %s", accepted)
		}
		if seen[d] {
			return fieldErr(field, "%q is listed twice: %s", d, accepted)
		}
		seen[d] = true
	}
	return nil
}

var folderRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// ValidateVirtioFolder accepts a virtio-win operating-system folder name such
// as "2k22" or "w11".
func ValidateVirtioFolder(v string) error {
	if folderRE.MatchString(v) {
		return nil
	}
	return fieldErr(FieldVirtioFolder, "%q is not a virtio-win folder name: expected letters, digits, '.', '_' or '-' (e.g. \"2k22\", \"2k25\", \"w11\")", v)
}

// ValidateVirtioArchFolder accepts amd64, ARM64 and x86 (case-insensitive).
func ValidateVirtioArchFolder(v string) error {
	switch strings.ToLower(v) {
	case "amd64", "arm64", "x86":
		return nil
	}
	return fieldErr(FieldVirtioArchFolder, "%q is not a virtio-win architecture folder: accepted are \"amd64\", \"ARM64\" and \"x86\"", v)
}

func validateDriverNames(v []string) error {
	for i, d := range v {
		if !folderRE.MatchString(d) {
			return fieldErr(fmt.Sprintf("%s[%d]", FieldVirtioDrivers, i), "%q is not a virtio-win driver folder: expected letters, digits, '.', '_' or '-' (e.g. \"viostor\", \"NetKVM\")", d)
		}
	}
	return nil
}

const usernameForbidden = `"/\[]:|<>+=;,?*%@`

var reservedUsernames = []string{"NONE", "Guest", "DefaultAccount", "WDAGUtilityAccount"}

// ValidateUsername applies Windows' local account name rules: 1–20
// characters, none of "/\[]:|<>+=;,?*%@, not only periods and spaces, not a
// reserved or built-in name other than Administrator.
func ValidateUsername(v string) error {
	const accepted = `accepted are 1 to 20 printable characters except "/\[]:|<>+=;,?*%@, not only periods or spaces, not NONE, Guest, DefaultAccount or WDAGUtilityAccount`
	if v == "" {
		return fieldErr(FieldUsername, "must not be empty: %s", accepted)
	}
	if err := ValidateText(FieldUsername, v, 0); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(v); n > maxUsernameLength {
		return fieldErr(FieldUsername, "%q is %d characters long: %s", v, n, accepted)
	}
	if i := strings.IndexAny(v, usernameForbidden); i >= 0 {
		return fieldErr(FieldUsername, "%q contains %q: %s", v, v[i:i+1], accepted)
	}
	if strings.Trim(v, ". ") == "" {
		return fieldErr(FieldUsername, "%q consists only of periods or spaces: %s", v, accepted)
	}
	for _, r := range reservedUsernames {
		if strings.EqualFold(v, r) {
			return fieldErr(FieldUsername, "%q is reserved or an existing built-in account: %s", v, accepted)
		}
	}
	return nil
}

// ValidatePassword requires a non-empty password of at most 127 characters
// that XML can carry (see ValidateText). The password is never echoed.
func ValidatePassword(v string) error {
	if v == "" {
		return fieldErr(FieldPassword, "must not be empty: the build account needs a password (leave winrm_password unset to have one generated)")
	}
	if err := ValidateText(FieldPassword, v, 0); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(v); n > maxPasswordLength {
		return fieldErr(FieldPassword, "is %d characters long: at most %d are accepted", n, maxPasswordLength)
	}
	return nil
}

// ValidateCommand checks the i-th unattend_extra_commands entry: non-empty,
// one line, at most 1024 characters (the FirstLogonCommands limit).
func ValidateCommand(i int, v string) error {
	field := fmt.Sprintf("%s[%d]", FieldExtraCommands, i)
	if strings.TrimSpace(v) == "" {
		return fieldErr(field, "is empty: each entry must be a command line such as \"cmd.exe /c mkdir C:\\\\build\"")
	}
	return ValidateText(field, v, maxCommandLineLength)
}
