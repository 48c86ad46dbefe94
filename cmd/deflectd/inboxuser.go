package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/deflectd/deflectd/inbox"
)

// inboxUser makes what the inbox's users file needs without putting a
// secret on the command line: a bcrypt hash of a password read from stdin,
// or a new API token and the hash that goes in the file.
func inboxUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: deflectd inbox-user hash-password   (reads the password on stdin)\n       deflectd inbox-user new-token")
		return 2
	}
	switch args[0] {
	case "hash-password":
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(stderr, "deflectd inbox-user: no password on stdin")
			return 1
		}
		h, err := inbox.HashPassword(strings.TrimRight(line, "\r\n"))
		if err != nil {
			fmt.Fprintln(stderr, "deflectd inbox-user:", err)
			return 1
		}
		fmt.Fprintf(stdout, "password_hash: %q\n", h)
		return 0
	case "new-token":
		var b [32]byte
		rand.Read(b[:])
		tok := "dfi_" + base64.RawURLEncoding.EncodeToString(b[:])
		fmt.Fprintf(stdout, "token (give it to the API client, once): %s\nusers file line:  tokens: [%q]\n", tok, inbox.HashToken(tok))
		return 0
	}
	fmt.Fprintf(stderr, "deflectd inbox-user: unknown command %q (hash-password or new-token)\n", args[0])
	return 2
}
