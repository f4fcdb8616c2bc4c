// Command ocilayout writes the test suite's tiny OCI image layout
// (testenv.OCILayout: one layer holding hello.txt, tagged v1) into a
// directory, for scripts that need an image without a network:
//
//	go run ./internal/testenv/cmd/ocilayout [--text TEXT] DIR
//
// scripts/demo.sh uses it. It prints the manifest digest.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/registry-bridge/bridge/internal/testenv"
)

func main() {
	text := flag.String("text", "hello from the registry-bridge test suite\n", "the content of hello.txt")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: ocilayout [--text TEXT] DIR")
		os.Exit(2)
	}
	img, err := testenv.WriteOCILayout(flag.Arg(0), *text)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocilayout: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(img.ManifestDigest)
}
