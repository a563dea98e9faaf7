package console

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
)

// etags holds a strong validator for every embedded file, computed once:
// the files never change while the process runs.
var etags = func() map[string]string {
	m := map[string]string{}
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		m[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return nil
	})
	return m
}()
