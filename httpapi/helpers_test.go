package httpapi

import (
	"encoding/base64"
	"os"
)

func osWriteFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

func base64Raw(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
