package wsman

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NTLM's NT hash is MD4 by definition.
)

// lookupUser finds the password of name: exact, then case-insensitive, then
// without a "DOMAIN\" prefix. It returns the configured spelling.
func (s *Server) lookupUser(name string) (string, string, bool) {
	if p, ok := s.opts.Users[name]; ok {
		return name, p, true
	}
	for _, n := range []string{name, name[strings.LastIndex(name, `\`)+1:]} {
		for u, p := range s.opts.Users {
			if strings.EqualFold(u, n) {
				return u, p, true
			}
		}
	}
	return "", "", false
}

// logonRefused reports whether Windows refuses user's logon although the
// password matched (Options.LogonRefused).
func (s *Server) logonRefused(user string) bool {
	return s.opts.LogonRefused != nil && s.opts.LogonRefused(user)
}

// unauthorized answers 401 as WinRM does: no body, no Content-Type, the
// enabled schemes in WWW-Authenticate.
func (s *Server) unauthorized(w http.ResponseWriter, negotiateToken string) {
	h := w.Header()
	h.Set("Server", "Microsoft-HTTPAPI/2.0")
	if negotiateToken != "" {
		h.Add("WWW-Authenticate", negotiateToken)
	} else {
		if s.authMethods()&AuthNTLM != 0 {
			h.Add("WWW-Authenticate", "Negotiate")
		}
		if s.authMethods()&AuthBasic != 0 {
			h.Add("WWW-Authenticate", `Basic realm="WSMAN"`)
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

// authenticate checks the request's credentials. On false it has written
// the 401. viaNTLM says the request is served on the connection's NTLM
// logon; session is that logon's security context when the client
// negotiated signing or sealing; contextSetup marks the empty POST whose
// AUTHENTICATE completes the handshake before sealed messages.
//
// An empty POST is only meaningful as the leg that carries the
// AUTHENTICATE message ([MS-WSMV] 2.2.9.1.1.1: the client sends
// Authorization until the service answers 200 OK; pywinrm transport.py
// setup_encryption). An empty POST without Authorization on an
// authenticated connection gets 401, a fresh handshake: masterzen's
// winrm.NewEncryption("ntlm") sends exactly that before every message
// (encryption.go Post → PrepareRequest, with a new ntlmssp client each
// time) and works against Windows over HTTP (masterzen PR #134, tested
// against 5985 by its author), which it could not if Windows answered 200
// there: it would then seal nothing.
//
// With RejectUnencrypted (AllowUnencrypted=false), a request over HTTP is
// refused with 401 unless it is a sealed message (multipart/encrypted) or
// that handshake-completing empty POST; unsealed Basic or NTLM traffic
// keeps getting 401 (packer#6205: Packer's unsealed NTLM against a default
// listener "will constantly send a 401 error").
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, tc *trackedConn, bodyLen int) (user string, viaNTLM, contextSetup bool, session *ntlmSession, ok bool) {
	user, ok = s.credentials(w, r, tc)
	if !ok {
		return "", false, false, nil, false
	}
	auth := r.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(auth, " ")
	if tc != nil && !strings.EqualFold(scheme, "Basic") {
		tc.mu.Lock()
		viaNTLM, session = tc.user == user && user != "", tc.session
		tc.mu.Unlock()
	}
	if viaNTLM && bodyLen == 0 {
		if auth == "" {
			s.unauthorized(w, "")
			return "", false, false, nil, false
		}
		contextSetup = true
	}
	if s.rejectsUnencrypted() && r.TLS == nil && !contextSetup &&
		!(viaNTLM && isEncryptedContentType(r.Header.Get("Content-Type"))) {
		s.unauthorized(w, "")
		return "", false, false, nil, false
	}
	return user, viaNTLM, contextSetup, session, true
}

// credentials checks the request's credentials. On false it has written
// the 401.
func (s *Server) credentials(w http.ResponseWriter, r *http.Request, tc *trackedConn) (string, bool) {
	auth := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	token = strings.TrimSpace(token)
	switch {
	case auth == "":
		if tc != nil {
			tc.mu.Lock()
			user := tc.user
			tc.mu.Unlock()
			if user != "" {
				return user, true
			}
		}
	case strings.EqualFold(scheme, "Basic") && s.authMethods()&AuthBasic != 0:
		raw, err := base64.StdEncoding.DecodeString(token)
		if err == nil {
			name, pass, _ := strings.Cut(string(raw), ":")
			if u, p, ok := s.lookupUser(name); ok && subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1 && !s.logonRefused(u) {
				return u, true
			}
		}
	case (strings.EqualFold(scheme, "Negotiate") || strings.EqualFold(scheme, "NTLM")) && s.authMethods()&AuthNTLM != 0 && tc != nil:
		msg, err := base64.StdEncoding.DecodeString(token)
		if err != nil || len(msg) < 12 || !bytes.Equal(msg[:8], ntlmSignature) {
			break
		}
		switch binary.LittleEndian.Uint32(msg[8:12]) {
		case 1:
			challenge := make([]byte, 8)
			_, _ = rand.Read(challenge)
			var clientFlags uint32
			if len(msg) >= 16 {
				clientFlags = binary.LittleEndian.Uint32(msg[12:16])
			}
			challengeMsg := ntlmChallengeMessage(challenge, clientFlags, s.opts.ComputerName, s.opts.Now())
			// A new handshake replaces the connection's security context.
			tc.mu.Lock()
			tc.challenge = challenge
			tc.negotiateMsg = append([]byte(nil), msg...)
			tc.challengeMsg = challengeMsg
			tc.user = ""
			tc.session = nil
			tc.mu.Unlock()
			s.unauthorized(w, scheme+" "+base64.StdEncoding.EncodeToString(challengeMsg))
			return "", false
		case 3:
			tc.mu.Lock()
			challenge, negotiateMsg, challengeMsg := tc.challenge, tc.negotiateMsg, tc.challengeMsg
			tc.challenge, tc.negotiateMsg, tc.challengeMsg = nil, nil, nil
			tc.mu.Unlock()
			if challenge == nil {
				break
			}
			user, session, err := s.ntlmVerify(msg, challenge, negotiateMsg, challengeMsg)
			if err != nil || s.logonRefused(user) {
				break
			}
			tc.mu.Lock()
			tc.user = user
			tc.session = session
			tc.mu.Unlock()
			return user, true
		}
	}
	s.unauthorized(w, "")
	return "", false
}

var ntlmSignature = []byte("NTLMSSP\x00")

const (
	ntlmUnicode          = 1 << 0
	ntlmRequestTarget    = 1 << 2
	ntlmNTLM             = 1 << 9
	ntlmAlwaysSign       = 1 << 15
	ntlmTargetTypeDomain = 1 << 16
	ntlmExtendedSecurity = 1 << 19
	ntlmTargetInfo       = 1 << 23
	ntlmVersion          = 1 << 25
	ntlm128              = 1 << 29
	ntlm56               = 1 << 31
)

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// ntlmChallengeMessage builds the CHALLENGE (type 2) message of
// [MS-NLMP] 2.2.1.2: NTLMv2 with target information. The server grants the
// session security the client asked for in its NEGOTIATE flags
// ([MS-NLMP] 2.2.2.5: SIGN, SEAL and KEY_EXCH requested by the client are
// returned when supported), which is what message encryption (MS-WSMV
// 2.2.9.1) rests on.
func ntlmChallengeMessage(challenge []byte, clientFlags uint32, computer string, now time.Time) []byte {
	computer = strings.ToUpper(computer)
	target := utf16le(computer)
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		_ = binary.Write(&info, binary.LittleEndian, id)
		_ = binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	// A workgroup machine: its own name is the domain.
	av(2, utf16le(computer))                  // MsvAvNbDomainName
	av(1, utf16le(computer))                  // MsvAvNbComputerName
	av(4, utf16le(strings.ToLower(computer))) // MsvAvDnsDomainName
	av(3, utf16le(strings.ToLower(computer))) // MsvAvDnsComputerName
	ft := make([]byte, 8)
	binary.LittleEndian.PutUint64(ft, uint64(now.UnixNano()/100)+116444736000000000)
	av(7, ft) // MsvAvTimestamp
	av(0, nil)

	const fixed = 56 // header, fields and version
	var b bytes.Buffer
	b.Write(ntlmSignature)
	_ = binary.Write(&b, binary.LittleEndian, uint32(2))
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(target)))
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(target)))
	_ = binary.Write(&b, binary.LittleEndian, uint32(fixed))
	flags := uint32(ntlmUnicode | ntlmRequestTarget | ntlmNTLM | ntlmAlwaysSign | ntlmTargetTypeDomain |
		ntlmExtendedSecurity | ntlmTargetInfo | ntlmVersion | ntlm128 | ntlm56)
	flags |= clientFlags & (ntlmSign | ntlmSeal | ntlmKeyExch)
	_ = binary.Write(&b, binary.LittleEndian, flags)
	b.Write(challenge)
	b.Write(make([]byte, 8))
	_ = binary.Write(&b, binary.LittleEndian, uint16(info.Len()))
	_ = binary.Write(&b, binary.LittleEndian, uint16(info.Len()))
	_ = binary.Write(&b, binary.LittleEndian, uint32(fixed+len(target)))
	b.Write([]byte{10, 0, 0x63, 0x45, 0, 0, 0, 15}) // Windows 10.0 build 17763, NTLMSSP_REVISION_W2K3
	b.Write(target)
	b.Write(info.Bytes())
	return b.Bytes()
}

// ntlmVerify checks an AUTHENTICATE (type 3) message against challenge
// with NTLMv2 ([MS-NLMP] 3.3.2), checks its MIC when the client sent one,
// and returns the configured user name and, when the client negotiated
// signing or sealing, the connection's security context ([MS-NLMP]
// 3.2.5.1.2: KeyExchangeKey = SessionBaseKey for NTLMv2; with KEY_EXCH the
// exported session key is RC4K(KeyExchangeKey, EncryptedRandomSessionKey)).
func (s *Server) ntlmVerify(msg, challenge, negotiateMsg, challengeMsg []byte) (string, *ntlmSession, error) {
	field := func(off int) ([]byte, error) {
		if len(msg) < off+8 {
			return nil, errors.New("short AUTHENTICATE message")
		}
		l := int(binary.LittleEndian.Uint16(msg[off:]))
		o := int(binary.LittleEndian.Uint32(msg[off+4:]))
		if o < 0 || o+l > len(msg) {
			return nil, errors.New("AUTHENTICATE field out of range")
		}
		return msg[o : o+l], nil
	}
	nt, err := field(20)
	if err != nil {
		return "", nil, err
	}
	domainB, err := field(28)
	if err != nil {
		return "", nil, err
	}
	userB, err := field(36)
	if err != nil {
		return "", nil, err
	}
	encryptedKey, err := field(52)
	if err != nil {
		return "", nil, err
	}
	if len(msg) < 64 {
		return "", nil, errors.New("short AUTHENTICATE message")
	}
	flags := binary.LittleEndian.Uint32(msg[60:64])
	if len(nt) < 16+28 {
		return "", nil, errors.New("not an NTLMv2 response")
	}
	user, domain := fromUTF16LE(userB), fromUTF16LE(domainB)
	name, pass, ok := s.lookupUser(user)
	if !ok {
		return "", nil, errors.New("unknown user")
	}
	h := md4.New()
	h.Write(utf16le(pass))
	ntHash := h.Sum(nil)
	v2 := hmacMD5(ntHash, utf16le(strings.ToUpper(user)+domain))
	proof := hmacMD5(v2, challenge, nt[16:])
	if !hmac.Equal(proof, nt[:16]) {
		return "", nil, errors.New("wrong password")
	}

	keyExchangeKey := hmacMD5(v2, proof) // SessionBaseKey
	exportedKey := keyExchangeKey
	if flags&ntlmKeyExch != 0 {
		if len(encryptedKey) != 16 {
			return "", nil, errors.New("KEY_EXCH without a 16-byte EncryptedRandomSessionKey")
		}
		c, err := rc4.NewCipher(keyExchangeKey)
		if err != nil {
			return "", nil, err
		}
		exportedKey = make([]byte, 16)
		c.XORKeyStream(exportedKey, encryptedKey)
	}
	// A client that announces a MIC (MsvAvFlags bit 0x2 in the AV pairs of
	// its NTLMv2 response) has it checked; a wrong one fails the logon.
	if ntlmAVFlags(nt[16+28:])&0x2 != 0 {
		const micOffset = 72 // after the Version field, [MS-NLMP] 2.2.1.3
		if len(msg) < micOffset+16 || negotiateMsg == nil {
			return "", nil, errors.New("AUTHENTICATE message announces a MIC it cannot carry")
		}
		if !hmac.Equal(ntlmMIC(exportedKey, negotiateMsg, challengeMsg, msg, micOffset), msg[micOffset:micOffset+16]) {
			return "", nil, errors.New("MIC does not verify")
		}
	}
	// A context that cannot be modelled (no extended session security) is
	// left out; a sealed message on it is reported when it comes.
	var session *ntlmSession
	if flags&(ntlmSign|ntlmSeal) != 0 {
		session, _ = newNTLMSession(exportedKey, flags)
	}
	return name, session, nil
}

// ntlmAVFlags is the MsvAvFlags value among NTLMv2 response AV pairs
// ([MS-NLMP] 2.2.2.1), 0 when absent.
func ntlmAVFlags(pairs []byte) uint32 {
	for len(pairs) >= 4 {
		id := binary.LittleEndian.Uint16(pairs)
		l := int(binary.LittleEndian.Uint16(pairs[2:]))
		if id == 0 || len(pairs) < 4+l {
			return 0
		}
		if id == 6 && l == 4 {
			return binary.LittleEndian.Uint32(pairs[4:])
		}
		pairs = pairs[4+l:]
	}
	return 0
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}
