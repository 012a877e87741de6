package engine

import (
	"errors"
	"fmt"
	"strconv"
)

// The scripts' replies, as the transport hands them over: integers as
// int64, bulk strings as []byte, status replies as string, arrays as
// []any, and a nil bulk string or array as nil. Error replies arrive as
// errors, never here. These helpers read them; an unexpected shape is an
// error, never a zero value taken for an answer.

// errNilReply: a nil where a value was expected.
var errNilReply = errors.New("nil reply")

// replyInt reads an integer reply (or a bulk string holding one).
func replyInt(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case []byte:
		return strconv.ParseInt(string(v), 10, 64)
	case nil:
		return 0, errNilReply
	}
	return 0, fmt.Errorf("an integer expected, got %T", v)
}

// replyString reads a bulk string or status reply.
func replyString(v any) (string, error) {
	switch v := v.(type) {
	case []byte:
		return string(v), nil
	case string:
		return v, nil
	case nil:
		return "", errNilReply
	}
	return "", fmt.Errorf("a string expected, got %T", v)
}

// replyArray reads an array reply.
func replyArray(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case nil:
		return nil, errNilReply
	}
	return nil, fmt.Errorf("an array expected, got %T", v)
}

// replyInts reads an array of integers.
func replyInts(v any) ([]int64, error) { return replyEach(v, replyInt) }

// replyStrings reads an array of strings.
func replyStrings(v any) ([]string, error) { return replyEach(v, replyString) }

// replyEach reads an array reply, each element by one.
func replyEach[T any](v any, one func(any) (T, error)) ([]T, error) {
	a, err := replyArray(v)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(a))
	for i, x := range a {
		if out[i], err = one(x); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return out, nil
}

// replyStringMap reads an array of field, value pairs (HGETALL's).
func replyStringMap(v any) (map[string]string, error) {
	a, err := replyStrings(v)
	if err != nil {
		return nil, err
	}
	if len(a)%2 != 0 {
		return nil, fmt.Errorf("%d elements for field, value pairs", len(a))
	}
	m := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		m[a[i]] = a[i+1]
	}
	return m, nil
}

// scanReply reads the array reply v, of len(dst) elements, into dst, each
// an *int64, *string, *[]int64, *[]string or *[]any.
func scanReply(v any, dst ...any) error {
	a, err := replyArray(v)
	if err != nil {
		return err
	}
	if len(a) != len(dst) {
		return fmt.Errorf("%d elements, want %d", len(a), len(dst))
	}
	for i, d := range dst {
		switch d := d.(type) {
		case *int64:
			*d, err = replyInt(a[i])
		case *string:
			*d, err = replyString(a[i])
		case *[]int64:
			*d, err = replyInts(a[i])
		case *[]string:
			*d, err = replyStrings(a[i])
		case *[]any:
			*d, err = replyArray(a[i])
		default:
			panic(fmt.Sprintf("scanReply: cannot scan into %T", d))
		}
		if err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
	}
	return nil
}
