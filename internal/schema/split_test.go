package schema

import (
	"reflect"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"two", "CREATE TABLE a (x UInt8);\nCREATE TABLE b (y UInt8);", []string{"CREATE TABLE a (x UInt8)", "CREATE TABLE b (y UInt8)"}},
		{"semicolon in line comment", "-- a; b\nSELECT 1;", []string{"SELECT 1"}},
		{"semicolon in block comment", "/* x; y */ SELECT 2", []string{"SELECT 2"}},
		{"semicolon in string", "SELECT 'a;b'; SELECT 3", []string{"SELECT 'a;b'", "SELECT 3"}},
		{"escaped quote", `SELECT 'it\'s; ok'`, []string{`SELECT 'it\'s; ok'`}},
		{"dashes in string", "SELECT '--not a comment'", []string{"SELECT '--not a comment'"}},
		{"only comments", "-- nothing\n/* here */\n;", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := splitStatements(tc.in)
			for i := range got {
				got[i] = collapse(got[i])
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// collapse trims the newlines comment removal leaves behind.
func collapse(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if len(out) > 0 && out[len(out)-1] != ' ' {
				out = append(out, ' ')
			}
			continue
		}
		out = append(out, s[i])
	}
	for len(out) > 0 && out[len(out)-1] == ' ' {
		out = out[:len(out)-1]
	}
	for len(out) > 0 && out[0] == ' ' {
		out = out[1:]
	}
	return string(out)
}
