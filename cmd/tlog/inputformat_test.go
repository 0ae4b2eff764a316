package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestInputFormat(t *testing.T) {
	for _, tc := range []struct {
		format, line string
		want         kgo.Record
	}{
		{"%k:%v", "order-1:note: has a colon", kgo.Record{Key: []byte("order-1"), Value: []byte("note: has a colon")}},
		{"%v", "just a value", kgo.Record{Value: []byte("just a value")}},
		{`%k\t%v`, "k\tv", kgo.Record{Key: []byte("k"), Value: []byte("v")}},
		{"%T %k %h %v", "1733100000000 order-1 src=web,trace=a=b shipped now",
			kgo.Record{Key: []byte("order-1"), Value: []byte("shipped now"), Timestamp: time.UnixMilli(1733100000000),
				Headers: []kgo.RecordHeader{{Key: "src", Value: []byte("web")}, {Key: "trace", Value: []byte("a=b")}}}},
		{"[%p] %k=%v;", "[2] a=b;", kgo.Record{Partition: 2, Key: []byte("a"), Value: []byte("b")}},
		{"%v|%k", "val|key|more", kgo.Record{Key: []byte("key|more"), Value: []byte("val")}},
		{"100%% %v", "100% v", kgo.Record{Value: []byte("v")}},
		{"%k:%v", ":empty key", kgo.Record{Key: []byte{}, Value: []byte("empty key")}},
		{"%h|%v", "|no headers", kgo.Record{Value: []byte("no headers")}},
	} {
		f, err := compileInputFormat(tc.format)
		if err != nil {
			t.Fatalf("compileInputFormat(%q): %v", tc.format, err)
		}
		var r kgo.Record
		if err := f.parse([]byte(tc.line), &r); err != nil {
			t.Fatalf("%q parsing %q: %v", tc.format, tc.line, err)
		}
		if !reflect.DeepEqual(r, tc.want) {
			t.Errorf("%q parsing %q = %+v, want %+v", tc.format, tc.line, r, tc.want)
		}
	}

	for format, want := range map[string]string{
		"%k%v":   "no text between",
		"%k:":    "no %v",
		"%v %v":  "twice",
		"%x %v":  "unknown %x",
		"%v%":    "lone %",
		`%k\n%v`: "newline",
	} {
		if _, err := compileInputFormat(format); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("compileInputFormat(%q) = %v, want an error saying %q", format, err, want)
		}
	}

	for _, tc := range []struct{ format, line, want string }{
		{"%k:%v", "no separator", `expected ":" after %k`},
		{"[%p] %v", "2] v", `expected "[" before %p`},
		{"[%p] %v", "[x] v", `partition "x"`},
		{"%T %v", "yesterday v", `timestamp "yesterday"`},
		{"%h %v", "novalue v", `header "novalue"`},
		{"%v;", "v", `end with ";"`},
	} {
		f, err := compileInputFormat(tc.format)
		if err != nil {
			t.Fatal(err)
		}
		var r kgo.Record
		if err := f.parse([]byte(tc.line), &r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q parsing %q: %v, want an error saying %q", tc.format, tc.line, err, tc.want)
		}
	}
}
