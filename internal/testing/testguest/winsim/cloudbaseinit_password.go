package winsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// cloudbaseSetPassword is plugins/common/setuserpassword.py
// SetUserPasswordPlugin.execute for services that cannot update the
// password (can_update_password False: all modelled ones). For an
// existing account (shared username, else the username option):
// _get_password takes the metadata's admin password with
// inject_user_password, else the password CreateUserPlugin shared, else
// a random one; _change_logon_behaviour then forces a password change at
// the next logon unless first_logon_behaviour is "no": always with
// "always", and with "clear_text_injected_only" (the default) when the
// password is the injected one. The password is shared and, where the
// service takes one, posted encrypted unless one is set already.
func cloudbaseSetPassword(ctx context.Context, p *cloudbasePluginRun) (int, bool, error) {
	const logger = "cloudbaseinit.plugins.common.setuserpassword"
	user := p.conf.str("username")
	if p.shared.hasUsername {
		user = p.shared.username
	}
	name, exists := p.m.userExists(user)
	if !exists {
		return pluginExecutionDone, false, nil
	}
	user = name

	// _get_password.
	password, injected := "", false
	if p.conf.boolean("inject_user_password") {
		var err error
		if password, err = p.svc.adminPassword(ctx); err != nil {
			return 0, false, err
		}
	}
	if password != "" {
		injected = true
		p.log.log("WARNING", logger, "Using admin_pass metadata user password. Consider changing it as soon as possible")
	} else if p.shared.hasPassword {
		password = p.shared.password
	}
	if password == "" {
		p.log.log("DEBUG", logger, "Generating a random user password")
		var err error
		if password, err = cloudbaseRandomPassword(p.conf.integer("user_password_length")); err != nil {
			return 0, false, err
		}
	}
	if err := p.setUserPassword(user, password); err != nil {
		return 0, false, err
	}

	// _change_logon_behaviour.
	switch behaviour := p.conf.str("first_logon_behaviour"); {
	case behaviour == cloudbaseNeverChange:
	case behaviour == cloudbaseAlwaysChange, behaviour == cloudbaseClearTextInjectedOnly && injected:
		if err := p.m.changePasswordNextLogon(user); err != nil {
			return 0, false, err
		}
	}
	p.log.log("INFO", logger, "Password succesfully updated for user %s", user)
	p.shared.password, p.shared.hasPassword = password, true

	canPost, err := p.svc.canPostPassword(ctx)
	if err != nil {
		return 0, false, err
	}
	if !canPost {
		p.log.log("INFO", logger, "Cannot set the password in the metadata as it is not supported by this service")
		return pluginExecutionDone, false, nil
	}
	// _set_metadata_password.
	set, err := p.svc.isPasswordSet(ctx)
	if err != nil {
		return 0, false, err
	}
	if set {
		p.log.log("DEBUG", logger, "User's password already set in the instance metadata and it cannot be updated in the instance metadata")
		return pluginExecutionDone, false, nil
	}
	// get_user_pwd_encryption_key: the first public key (of a Python set).
	keys, err := p.svc.publicKeys(ctx)
	if err != nil {
		return 0, false, err
	}
	if len(keys) == 0 {
		p.log.log("INFO", logger, "No SSH public key available for password encryption")
		return pluginExecutionDone, false, nil
	}
	if len(keys) > 1 {
		p.m.unsupportedf("cloudbase-init: %d public keys; which one encrypts the password is not defined (a Python set)", len(keys))
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(keys[0]))
	if err != nil {
		return 0, false, fmt.Errorf("loading the SSH public key: %w", err)
	}
	ck, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0, false, fmt.Errorf("the SSH public key is %s, not RSA", pub.Type())
	}
	rsaKey, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0, false, fmt.Errorf("the SSH public key is %s, not RSA", pub.Type())
	}
	// utils/crypt.py public_encrypt: RSA PKCS#1 v1.5, then base64.
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, rsaKey, []byte(password))
	if err != nil {
		return 0, false, err
	}
	if err := p.svc.postPassword(ctx, base64.StdEncoding.EncodeToString(ct)); err != nil {
		return 0, false, err
	}
	return pluginExecutionDone, false, nil
}

// changePasswordNextLogon is osutils/windows.py
// change_password_next_logon: NetUserSetInfo level 4 with
// usri4_password_expired = 1 ("User must change password at next logon",
// Microsoft's "Forcing a User to Change the Logon Password").
func (m *Machine) changePasswordNextLogon(user string) error {
	if _, known := m.knownUser(user); known {
		m.unsupportedf("cloudbase-init: expiring the password of %s, an account of Options.Users, is not modelled", user)
		return nil
	}
	return m.updateAccount(user, func(a *LocalAccount) { a.MustChangePassword = true })
}

// PasswordMustChange reports whether the account's password must be
// changed at the next logon (usri4_password_expired). Windows then
// refuses to log it on with its password: LogonUser fails with
// ERROR_PASSWORD_MUST_CHANGE (1907, 0x773; seen through LogonUser in
// ansible-collections/community.windows#223, handled in #246), the
// authentication package with STATUS_PASSWORD_MUST_CHANGE (0xC0000224,
// Microsoft KB Q140967). Only an interactive logon can change the
// password, so WinRM's authentication fails and it answers with the 401
// of any failed logon.
func (m *Machine) PasswordMustChange(user string) bool {
	user = userName(user)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.st.Accounts {
		if strings.EqualFold(a.Name, user) {
			return a.MustChangePassword
		}
	}
	return false
}
