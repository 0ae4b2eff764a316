package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

// byteSize is a flag of bytes written in human units as the docs write
// them: 8MiB, 1GiB, 256KiB (powers of 1024), 10MB (powers of 1000), or a
// plain count of bytes.
type byteSize struct{ n int64 }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1e12}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3},
	{"b", 1},
}

var errBadSize = errors.New("not a size: write bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB (8MiB)")

// parseSize reads a size such as 8MiB, 1.5GiB, 64KiB, 10MB or 1048576.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || (n > 0 && mult > math.MaxInt64/n) {
			return 0, fmt.Errorf("%q: %w", s, errBadSize)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || f*float64(mult) >= math.MaxInt64 || t == "" {
		return 0, fmt.Errorf("%q: %w", s, errBadSize)
	}
	return int64(f * float64(mult)), nil
}

// formatSize writes n in the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range sizeUnits[:4] {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + strings.Replace(strings.ToUpper(u.suffix), "IB", "iB", 1)
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	b.n = n
	return nil
}

func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	return formatSize(b.n)
}

// sizeFlag is a flag taking a byteSize, its default shown in units.
func sizeFlag(name string, def int64, usage string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Value: &byteSize{def}, Usage: usage + " (bytes, or with a unit: 8MiB, 1GiB)"}
}

// sizeOf reads a sizeFlag.
func sizeOf(c *cli.Context, name string) int64 {
	if b, ok := c.Generic(name).(*byteSize); ok {
		return b.n
	}
	return 0
}
