package main

// tlog produce --format: the reverse of consume's --format. A format is a
// run of fields (%k key, %v value, %p partition, %T timestamp in Unix ms,
// %h headers as NAME=VALUE,NAME=VALUE) separated by literal text; each
// field takes the line up to the next literal, the last one to the end of
// the line. Two fields with nothing between them cannot be split, so they
// are refused when the format is parsed rather than guessed at per line.

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// inputField is one field of an input format, with the literal text that
// must precede it (empty only for the first field).
type inputField struct {
	before []byte
	verb   byte
}

// inputFormat turns one input line into a record.
type inputFormat struct {
	fields []inputField
	after  []byte // literal text that must end the line
	hasKey bool
}

// compileInputFormat parses a produce --format string.
func compileInputFormat(f string) (*inputFormat, error) {
	f = unescape(f)
	if strings.ContainsAny(f, "\n") {
		return nil, errors.New("input is read one line at a time, so the format cannot hold a newline")
	}
	out := &inputFormat{}
	seen := map[byte]bool{}
	var lit []byte
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			lit = append(lit, f[i])
			continue
		}
		if i+1 == len(f) {
			return nil, errors.New("it ends with a lone %")
		}
		i++
		switch v := f[i]; v {
		case '%':
			lit = append(lit, '%')
		case 'k', 'v', 's', 'p', 'T', 'h':
			if v == 's' {
				v = 'v'
			}
			if seen[v] {
				return nil, fmt.Errorf("%%%c appears twice", v)
			}
			seen[v] = true
			if len(out.fields) > 0 && len(lit) == 0 {
				return nil, fmt.Errorf("%%%c follows another field with no text between them to split the line at", v)
			}
			out.fields = append(out.fields, inputField{before: lit, verb: v})
			lit = nil
		default:
			return nil, fmt.Errorf("unknown %%%c (use %%k %%v %%p %%T %%h or %%%%)", v)
		}
	}
	if !seen['v'] {
		return nil, errors.New("it has no %v for the value")
	}
	out.after = lit
	out.hasKey = seen['k']
	return out, nil
}

// parse fills r from line. Key, value and header values alias line.
func (f *inputFormat) parse(line []byte, r *kgo.Record) error {
	rest := line
	for i, fl := range f.fields {
		if !bytes.HasPrefix(rest, fl.before) {
			return fmt.Errorf("expected %q before %%%c", fl.before, fl.verb)
		}
		rest = rest[len(fl.before):]
		var field []byte
		switch {
		case i+1 < len(f.fields):
			next := f.fields[i+1].before
			j := bytes.Index(rest, next)
			if j < 0 {
				return fmt.Errorf("expected %q after %%%c", next, fl.verb)
			}
			field, rest = rest[:j], rest[j:]
		case len(f.after) > 0:
			if !bytes.HasSuffix(rest, f.after) {
				return fmt.Errorf("expected the line to end with %q", f.after)
			}
			field, rest = rest[:len(rest)-len(f.after)], nil
		default:
			field, rest = rest, nil
		}
		if err := setField(r, fl.verb, field); err != nil {
			return err
		}
	}
	return nil
}

func setField(r *kgo.Record, verb byte, field []byte) error {
	switch verb {
	case 'k':
		r.Key = field
	case 'v':
		r.Value = field
	case 'p':
		n, err := strconv.ParseInt(string(field), 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("partition %q is not a partition number", field)
		}
		r.Partition = int32(n)
	case 'T':
		ms, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil || ms < 0 {
			return fmt.Errorf("timestamp %q is not a Unix time in milliseconds", field)
		}
		r.Timestamp = time.UnixMilli(ms)
	case 'h':
		if len(field) == 0 {
			return nil
		}
		for _, kv := range bytes.Split(field, []byte(",")) {
			k, v, ok := bytes.Cut(kv, []byte("="))
			if !ok || len(k) == 0 {
				return fmt.Errorf("header %q is not NAME=VALUE", kv)
			}
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(k), Value: v})
		}
	}
	return nil
}

// has says whether lines carry field verb.
func (f *inputFormat) has(verb byte) bool {
	for _, fl := range f.fields {
		if fl.verb == verb {
			return true
		}
	}
	return false
}
