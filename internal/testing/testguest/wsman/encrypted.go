package wsman

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// WinRM message encryption over HTTP with an NTLM security context
// ([MS-WSMV] 2.2.9.1.1, Negotiate Encrypted Message). What clients send and
// Windows answers, as pywinrm (winrm/encryption.py, class Encryption:
// _encrypt_message, _decrypt_response, _build_ntlm_message) and masterzen
// (encryption.go: encryptMessage, decryptResponse, buildNTLMMessage) write
// and read it:
//
//	Content-Type: multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"
//
//	--Encrypted Boundary\r\n
//	\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//	\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plaintext bytes>\r\n
//	--Encrypted Boundary\r\n
//	\tContent-Type: application/octet-stream\r\n
//	<uint32 LE signature length (16)><NTLM signature><sealed SOAP envelope>--Encrypted Boundary--\r\n
//
// There is no blank line after the part headers and no CRLF before the
// closing delimiter, so this is not RFC 2046 multipart: it is parsed by its
// fixed layout, the sealed bytes delimited by Length (RC4 keeps lengths).
// Windows sends the same Content-Type (a Windows response header recorded in
// urllib3's test_util.py, test_assert_header_parsing_no_error_on_multipart)
// and seals every SOAP answer to a sealed request, faults included (pywinrm
// decrypts the body of a 500 too: transport.py _send_message_request).
//
// multipart/x-multi-encrypted is CredSSP's chunked form ([MS-WSMV]
// 2.2.9.1.3.2) and application/HTTP-Kerberos-session-encrypted is
// Kerberos': neither is modelled and both are reported.

const (
	spnegoEncryptedProtocol = "application/HTTP-SPNEGO-session-encrypted"
	encryptedBoundaryLine   = "--Encrypted Boundary\r\n"
	encryptedBoundaryEnd    = "--Encrypted Boundary--\r\n"
	// encryptedContentType is the Content-Type of a sealed request and of
	// Windows' sealed answer ([MS-WSMV] 2.2.9.1.1.1).
	encryptedContentType = `multipart/encrypted;protocol="` + spnegoEncryptedProtocol + `";boundary="Encrypted Boundary"`
	originalContentType  = "application/soap+xml;charset=UTF-8"
)

// isEncryptedContentType reports whether a request claims to be an
// encrypted message of any kind (multipart/encrypted or CredSSP's
// multipart/x-multi-encrypted).
func isEncryptedContentType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "multipart/encrypted" || mt == "multipart/x-multi-encrypted")
}

// errEncryptedFraming is a body that is not the layout above.
var errEncryptedFraming = errors.New("not an MS-WSMV 2.2.9.1.1 encrypted message")

// parseEncryptedMessage checks the Content-Type and the framing of a sealed
// request and returns the NTLM signature and the sealed envelope. Its
// errors say what is not modelled or malformed, for Failf.
func parseEncryptedMessage(contentType string, body []byte) (sig, sealed []byte, err error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypted request: Content-Type %q: %v", contentType, err)
	}
	if mt != "multipart/encrypted" || !strings.EqualFold(params["protocol"], spnegoEncryptedProtocol) {
		return nil, nil, fmt.Errorf("encrypted request with Content-Type %q: only multipart/encrypted with protocol %q (NTLM, MS-WSMV 2.2.9.1.1) is modelled", contentType, spnegoEncryptedProtocol)
	}
	if params["boundary"] != "Encrypted Boundary" {
		return nil, nil, fmt.Errorf("encrypted request: boundary %q, MS-WSMV 2.2.9.1.1.1 requires \"Encrypted Boundary\"", params["boundary"])
	}

	rest, ok := bytes.CutPrefix(body, []byte(encryptedBoundaryLine))
	if !ok {
		return nil, nil, fmt.Errorf("%w: the body does not start with %q", errEncryptedFraming, encryptedBoundaryLine)
	}
	headers, rest, ok := bytes.Cut(rest, []byte(encryptedBoundaryLine))
	if !ok {
		return nil, nil, fmt.Errorf("%w: no second %q", errEncryptedFraming, encryptedBoundaryLine)
	}
	length := -1
	sawProtocol := false
	for _, line := range strings.Split(strings.TrimSuffix(string(headers), "\r\n"), "\r\n") {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ":")
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Content-Type") && strings.EqualFold(value, spnegoEncryptedProtocol):
			sawProtocol = true
		case strings.EqualFold(name, "OriginalContent"):
			if length, err = originalLength(value); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("%w: unexpected part header %q", errEncryptedFraming, line)
		}
	}
	if !sawProtocol || length < 0 {
		return nil, nil, fmt.Errorf("%w: the first part lacks Content-Type %s or OriginalContent", errEncryptedFraming, spnegoEncryptedProtocol)
	}
	line, rest, ok := bytes.Cut(rest, []byte("\r\n"))
	if !ok || !strings.EqualFold(strings.TrimSpace(string(line)), "Content-Type: application/octet-stream") {
		return nil, nil, fmt.Errorf("%w: the second part is not \"Content-Type: application/octet-stream\"", errEncryptedFraming)
	}
	if len(rest) < 4 {
		return nil, nil, fmt.Errorf("%w: no signature length", errEncryptedFraming)
	}
	sigLen := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if sigLen > len(rest) || len(rest)-sigLen != length+len(encryptedBoundaryEnd) || string(rest[sigLen+length:]) != encryptedBoundaryEnd {
		return nil, nil, fmt.Errorf("%w: signature length %d and Length=%d do not match the %d bytes before %q", errEncryptedFraming, sigLen, length, len(rest), encryptedBoundaryEnd)
	}
	return rest[:sigLen], rest[sigLen : sigLen+length], nil
}

// originalLength reads OriginalContent ("type=application/soap+xml;
// charset=UTF-8;Length=N").
func originalLength(value string) (int, error) {
	n := -1
	for _, p := range strings.Split(value, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "type":
			if !strings.EqualFold(v, "application/soap+xml") {
				return -1, fmt.Errorf("encrypted request: OriginalContent type %q, only application/soap+xml is modelled", v)
			}
		case "charset":
			if !strings.EqualFold(v, "UTF-8") {
				return -1, fmt.Errorf("encrypted request: OriginalContent charset %q, only UTF-8 is modelled", v)
			}
		case "length":
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 0 {
				return -1, fmt.Errorf("%w: OriginalContent Length %q", errEncryptedFraming, v)
			}
		}
	}
	if n < 0 {
		return -1, fmt.Errorf("%w: OriginalContent %q has no Length", errEncryptedFraming, value)
	}
	return n, nil
}

// encryptedMessage frames a sealed answer the way the requests are framed.
func encryptedMessage(sig, sealed []byte) []byte {
	var b bytes.Buffer
	b.WriteString(encryptedBoundaryLine)
	b.WriteString("\tContent-Type: " + spnegoEncryptedProtocol + "\r\n")
	b.WriteString("\tOriginalContent: type=" + originalContentType + ";Length=" + strconv.Itoa(len(sealed)) + "\r\n")
	b.WriteString(encryptedBoundaryLine)
	b.WriteString("\tContent-Type: application/octet-stream\r\n")
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(sig)))
	b.Write(sig)
	b.Write(sealed)
	b.WriteString(encryptedBoundaryEnd)
	return b.Bytes()
}

// badRequest is WinRM's answer to an encrypted message it cannot unseal (a
// wrong signature, a wrong key, broken framing): HTTP 400 and the
// connection closed, with its security context. Seen against Windows
// Server 2012 by an implementer whose NTLM sealing was wrong ("The Windows
// Server always responds with a HTTP 400 Bad Request and closes the
// connection"; WinRM's trace: "Sending HTTP error back to the client due
// to a transport failure", MSDN forum "HTTP 400 when using [MS-WSMV]
// WSMan/WinRM Message Encryption with Negotiate (NTLM token)"). The body
// of that 400 was not recorded: none is sent.
func (s *Server) badRequest(w http.ResponseWriter, tc *trackedConn) {
	if tc != nil {
		tc.mu.Lock()
		tc.user, tc.session = "", nil
		tc.mu.Unlock()
	}
	h := w.Header()
	h.Set("Server", "Microsoft-HTTPAPI/2.0")
	h.Set("Connection", "close")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusBadRequest)
}
