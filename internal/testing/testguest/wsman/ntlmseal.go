package wsman

import (
	"crypto/md5"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"sync"
)

// NTLM session security on the server side ([MS-NLMP] 3.4): reading
// messages a client sealed and sealing the answers, with NTLMv2 extended
// session security, as Windows does for WinRM message encryption over HTTP.
//
// No maintained Go library does the server side: github.com/bodgit/ntlmssp
// (what masterzen's winrm.NewEncryption uses) builds its SecuritySession
// only inside its client, and github.com/Azure/go-ntlmssp does no session
// security at all. The steps are few and written here from the
// specification on the standard library's MD5, HMAC-MD5 and RC4; the tests
// hold them to bodgit's client and to pywinrm's (ntlm-auth) client.

// The magic constants of [MS-NLMP] 3.4.5.2 (SIGNKEY) and 3.4.5.3 (SEALKEY),
// NUL included.
var (
	clientSigningMagic = []byte("session key to client-to-server signing key magic constant\x00")
	serverSigningMagic = []byte("session key to server-to-client signing key magic constant\x00")
	clientSealingMagic = []byte("session key to client-to-server sealing key magic constant\x00")
	serverSealingMagic = []byte("session key to server-to-client sealing key magic constant\x00")
)

const (
	ntlmSign    = 1 << 4  // NTLMSSP_NEGOTIATE_SIGN
	ntlmSeal    = 1 << 5  // NTLMSSP_NEGOTIATE_SEAL
	ntlmKeyExch = 1 << 30 // NTLMSSP_NEGOTIATE_KEY_EXCH
)

// ntlmSignatureSize is the NTLMSSP_MESSAGE_SIGNATURE of [MS-NLMP] 2.2.2.9.1:
// Version (1), an 8-byte checksum, a 4-byte sequence number.
const ntlmSignatureSize = 16

// errNTLMSignature is a sealed message whose signature does not verify.
var errNTLMSignature = errors.New("NTLM message signature does not verify")

// ntlmSession is the server's half of an NTLM security context: the keys
// and the two RC4 streams, one per direction, each with its sequence
// number. The RC4 streams run on across messages ([MS-NLMP] 3.4.3: the
// handles are initialised once per context), so messages must be unsealed
// and sealed in the order they travel; mu keeps them in order.
type ntlmSession struct {
	mu            sync.Mutex
	flags         uint32
	clientSignKey []byte      // verifies what the client signed
	serverSignKey []byte      // signs what the server sends
	clientSeal    *rc4.Cipher // unseals what the client sealed
	serverSeal    *rc4.Cipher // seals what the server sends
	clientSeqNum  uint32
	serverSeqNum  uint32
}

// newNTLMSession derives the keys from the exported session key and the
// negotiated flags ([MS-NLMP] 3.4.5.2 SIGNKEY, 3.4.5.3 SEALKEY). Only
// extended session security (NTLM2 session security, what NTLMv2 clients
// negotiate) is modelled; sealing without it is NTLMv1's RC4/CRC32 scheme,
// which Windows refuses by default (NtlmMinServerSec) and the stand-in
// does not model.
func newNTLMSession(exportedSessionKey []byte, flags uint32) (*ntlmSession, error) {
	if flags&ntlmExtendedSecurity == 0 {
		return nil, errors.New("NTLM session security without NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY (NTLMv1 sealing) is not modelled")
	}
	if len(exportedSessionKey) != 16 {
		return nil, errors.New("NTLM exported session key is not 16 bytes")
	}
	sealKey := func(magic []byte) []byte {
		k := exportedSessionKey
		switch {
		case flags&ntlm128 != 0:
		case flags&ntlm56 != 0:
			k = k[:7]
		default:
			k = k[:5]
		}
		return md5Sum(k, magic)
	}
	clientSeal, err := rc4.NewCipher(sealKey(clientSealingMagic))
	if err != nil {
		return nil, err
	}
	serverSeal, err := rc4.NewCipher(sealKey(serverSealingMagic))
	if err != nil {
		return nil, err
	}
	return &ntlmSession{
		flags:         flags,
		clientSignKey: md5Sum(exportedSessionKey, clientSigningMagic),
		serverSignKey: md5Sum(exportedSessionKey, serverSigningMagic),
		clientSeal:    clientSeal,
		serverSeal:    serverSeal,
	}, nil
}

func md5Sum(parts ...[]byte) []byte {
	h := md5.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// signature is MAC() with extended session security ([MS-NLMP] 3.4.4.2):
// Version 1, the first 8 bytes of HMAC_MD5(SigningKey, SeqNum || Message),
// encrypted with the direction's RC4 handle when KEY_EXCH was negotiated,
// then SeqNum. It must run after the message itself went through the same
// RC4 handle (3.4.3: SEAL encrypts the message first).
func (s *ntlmSession) signature(signKey []byte, handle *rc4.Cipher, seqNum uint32, message []byte) []byte {
	seq := binary.LittleEndian.AppendUint32(nil, seqNum)
	checksum := hmacMD5(signKey, seq, message)[:8]
	if s.flags&ntlmKeyExch != 0 {
		handle.XORKeyStream(checksum, checksum)
	}
	sig := binary.LittleEndian.AppendUint32(make([]byte, 0, ntlmSignatureSize), 1)
	sig = append(sig, checksum...)
	return append(sig, seq...)
}

// unseal decrypts a message the client sealed and verifies its signature
// and sequence number ([MS-NLMP] 3.4.3 Message Confidentiality, 3.4.4
// Message Signature Functions).
func (s *ntlmSession) unseal(sealed, sig []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(sig) != ntlmSignatureSize {
		return nil, errNTLMSignature
	}
	msg := make([]byte, len(sealed))
	s.clientSeal.XORKeyStream(msg, sealed)
	want := s.signature(s.clientSignKey, s.clientSeal, s.clientSeqNum, msg)
	if subtle.ConstantTimeCompare(want, sig) != 1 {
		return nil, errNTLMSignature
	}
	s.clientSeqNum++
	return msg, nil
}

// seal encrypts an answer for the client and signs it.
func (s *ntlmSession) seal(msg []byte) (sealed, sig []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sealed = make([]byte, len(msg))
	s.serverSeal.XORKeyStream(sealed, msg)
	sig = s.signature(s.serverSignKey, s.serverSeal, s.serverSeqNum, msg)
	s.serverSeqNum++
	return sealed, sig
}

// ntlmMIC is the MIC of an AUTHENTICATE message ([MS-NLMP] 3.1.5.1.2,
// 3.2.5.1.2): HMAC_MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE ||
// AUTHENTICATE with its MIC field zeroed).
func ntlmMIC(exportedSessionKey, negotiate, challenge, authenticate []byte, micOffset int) []byte {
	a := append([]byte(nil), authenticate...)
	copy(a[micOffset:micOffset+16], make([]byte, 16))
	return hmacMD5(exportedSessionKey, negotiate, challenge, a)
}
