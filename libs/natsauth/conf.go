package natsauth

import (
	"fmt"
	"strconv"
	"strings"
)

// Conf is the table as nats-server configuration: the users with their
// permissions, the system account with its user, and the auth callout.
// password gives each user's password and issuer the callout key's public
// key, as configuration values: quoted literals (Quote) or variables
// ("$JSM_NATS_PASSWORD_CONTRACTS", which the server reads from its
// environment; see EnvPasswords).
func Conf(password func(user string) string, issuer string) string {
	var b strings.Builder
	b.WriteString("# Made by libs/natsauth (natsauth.Conf): one user per JSM service, each\n")
	b.WriteString("# publishing only its own area's events and the JetStream subjects it\n")
	b.WriteString("# needs; every other client is asked about through the auth callout,\n")
	b.WriteString("# which the integration service answers for ITSM sources.\n")
	b.WriteString("authorization {\n  users: [\n")
	var authUsers []string
	for _, id := range All() {
		authUsers = append(authUsers, strconv.Quote(id.User))
		if id.Account == Account {
			writeUser(&b, "    ", id, password(id.User))
		}
	}
	b.WriteString("  ]\n  auth_callout {\n")
	fmt.Fprintf(&b, "    issuer: %s\n", issuer)
	fmt.Fprintf(&b, "    auth_users: [%s]\n", strings.Join(authUsers, ", "))
	b.WriteString("  }\n}\n\n")
	fmt.Fprintf(&b, "accounts {\n  %s {\n    users: [\n", SystemAccount)
	for _, id := range All() {
		if id.Account == SystemAccount {
			writeUser(&b, "      ", id, password(id.User))
		}
	}
	b.WriteString("    ]\n  }\n}\n")
	fmt.Fprintf(&b, "system_account: %s\n", SystemAccount)
	return b.String()
}

func writeUser(b *strings.Builder, indent string, id Identity, password string) {
	fmt.Fprintf(b, "%s{\n%s  user: %s\n%s  password: %s\n%s  permissions: {\n", indent, indent, strconv.Quote(id.User), indent, password, indent)
	fmt.Fprintf(b, "%s    publish: {allow: [%s]}\n", indent, quoted(id.Publish))
	fmt.Fprintf(b, "%s    subscribe: {allow: [%s]}\n", indent, quoted(id.Subscribe))
	if id.Responses {
		fmt.Fprintf(b, "%s    allow_responses: {max: 1}\n", indent)
	}
	fmt.Fprintf(b, "%s  }\n%s}\n", indent, indent)
}

func quoted(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

// Quote makes a literal configuration value of s.
func Quote(s string) string { return strconv.Quote(s) }

// PasswordEnv is the environment variable a shipped configuration reads
// user's password from: JSM_NATS_PASSWORD_<USER>, e.g.
// JSM_NATS_PASSWORD_CONTRACTS, JSM_NATS_PASSWORD_JSM_ADMIN.
func PasswordEnv(user string) string {
	return "JSM_NATS_PASSWORD_" + strings.ToUpper(strings.ReplaceAll(user, "-", "_"))
}

// IssuerEnv is the environment variable a shipped configuration reads the
// callout key's public key from.
const IssuerEnv = "JSM_NATS_CALLOUT_ISSUER"

// EnvPasswords are the passwords as variables of the server's environment.
func EnvPasswords(user string) string { return "$" + PasswordEnv(user) }
