package verify

import (
	"crypto/rand"
	"math/big"
)

// randomPassword is a 20-character password meeting Windows' complexity
// rules (upper and lower case letters, digits and a symbol).
func randomPassword() string {
	const (
		upper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lower  = "abcdefghijkmnopqrstuvwxyz"
		digits = "23456789"
		symbol = "-_.!"
	)
	all := upper + lower + digits + symbol
	pick := func(set string) byte {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			panic(err)
		}
		return set[n.Int64()]
	}
	b := []byte{pick(upper), pick(lower), pick(digits), pick(symbol)}
	for len(b) < 20 {
		b = append(b, pick(all))
	}
	return string(b)
}
