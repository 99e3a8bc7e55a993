package updates

import (
	"fmt"
	"testing"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// The communicator's address comes from the build's Host and Port, in
// whichever number type the generated data carries.
func TestCommunicatorAddress(t *testing.T) {
	for _, tc := range []struct {
		data map[string]interface{}
		host string
		port int
	}{
		{map[string]interface{}{"Host": "127.0.0.1", "Port": 2393}, "127.0.0.1", 2393},
		{map[string]interface{}{"Host": "10.0.0.5", "Port": float64(5985)}, "10.0.0.5", 5985},
		{map[string]interface{}{"Host": "10.0.0.5", "Port": int64(5986)}, "10.0.0.5", 5986},
		{map[string]interface{}{"Port": 5985}, "", 0},
		{map[string]interface{}{"Host": "10.0.0.5"}, "", 0},
	} {
		if h, p := communicatorAddress(tc.data); h != tc.host || p != tc.port {
			t.Errorf("communicatorAddress(%v) = %s, %d; want %s, %d", tc.data, h, p, tc.host, tc.port)
		}
	}
}
