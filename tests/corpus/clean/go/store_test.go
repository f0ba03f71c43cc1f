package store

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return data
}

func TestErrNotFoundIsStable(t *testing.T) {
	wrapped := errors.Join(errors.New("lookup failed"), ErrNotFound)
	if !errors.Is(wrapped, ErrNotFound) {
		t.Fatal("wrapped error lost ErrNotFound")
	}
}

func TestImportEmpty(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s := New(nil)
	if s == nil {
		t.Fatal("New returned nil")
	}
	_ = ctx
}

func TestTable(t *testing.T) {
	cases := []struct {
		name  string
		email string
		want  bool
	}{
		{"plain", "a@example.com", true},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.email != ""
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for i := 0; i < b.N; i++ {
		_ = New(nil)
	}
}

func ExampleNew() {
	s := New(nil)
	_ = s
	// Output:
}
