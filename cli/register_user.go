package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-im/sluice/internal/clientapi"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"
)

// registerUser is Synapse's register_new_matrix_user: shared-secret
// registration against a running server, with the same flags.
func registerUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("register-user", stderr)
	var (
		localpart, password, passwordFile, userType, configPath, secret string
		admin, noAdmin, existsOK                                        bool
	)
	for _, n := range []string{"u", "user"} {
		fs.StringVar(&localpart, n, "", "local part of the new user's ID")
	}
	for _, n := range []string{"p", "password"} {
		fs.StringVar(&password, n, "", "the new user's password")
	}
	fs.StringVar(&passwordFile, "password-file", "", "read the password from this file")
	for _, n := range []string{"t", "user_type"} {
		fs.StringVar(&userType, n, "", "user type: bot or support")
	}
	for _, n := range []string{"a", "admin"} {
		fs.BoolVar(&admin, n, false, "make the user a server admin")
	}
	fs.BoolVar(&noAdmin, "no-admin", false, "do not make the user a server admin (do not ask)")
	for _, n := range []string{"c", "config"} {
		fs.StringVar(&configPath, n, "", "configuration file holding registration_shared_secret")
	}
	for _, n := range []string{"k", "shared-secret"} {
		fs.StringVar(&secret, n, "", "the registration shared secret")
	}
	fs.BoolVar(&existsOK, "exists-ok", false, "succeed if the user already exists")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError{err}
	}
	if len(positional) > 1 {
		return usageError{fmt.Errorf("one server URL at most, got %d arguments: %s", len(positional), strings.Join(positional, " "))}
	}
	if (configPath == "") == (secret == "") {
		return usageError{errors.New("exactly one of -c FILE and -k SECRET is required")}
	}
	if admin && noAdmin {
		return usageError{errors.New("-a and --no-admin are mutually exclusive")}
	}
	if password != "" && passwordFile != "" {
		return usageError{errors.New("-p and --password-file are mutually exclusive")}
	}
	var serverURL string
	if len(positional) == 1 {
		serverURL = positional[0]
	}
	if configPath != "" {
		s, u, err := secretFromConfig(configPath)
		if err != nil {
			return err
		}
		secret = s
		if serverURL == "" {
			serverURL = u
		}
	}
	if serverURL == "" && configPath != "" {
		fmt.Fprintln(stderr, "Unable to find a suitable HTTP listener in the configuration file. Trying http://localhost:8008 as a last resort.")
		serverURL = "http://localhost:8008"
	}
	if serverURL == "" {
		fmt.Fprintln(stderr, "No server url or configuration file given. Defaulting to http://localhost:8008.")
		serverURL = "http://localhost:8008"
	}
	if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return err
		}
		password = strings.TrimSpace(string(b))
	}
	in := bufio.NewReader(stdin)
	if localpart == "" {
		def := ""
		if u, err := user.Current(); err == nil {
			def = u.Username
		}
		fmt.Fprintf(stdout, "New user localpart [%s]: ", def)
		line, _ := in.ReadString('\n')
		localpart = strings.TrimSpace(line)
		if localpart == "" {
			localpart = def
		}
		if localpart == "" {
			return errors.New("Invalid user name")
		}
	}
	if password == "" {
		p1, err := readPassword(in, stdin, stdout, "Password: ")
		if err != nil {
			return err
		}
		if p1 == "" {
			return errors.New("Password cannot be blank.")
		}
		p2, err := readPassword(in, stdin, stdout, "Confirm password: ")
		if err != nil {
			return err
		}
		if p1 != p2 {
			return errors.New("Passwords do not match")
		}
		password = p1
	}
	if !admin && !noAdmin {
		fmt.Fprint(stdout, "Make admin [no]: ")
		line, _ := in.ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(line)) {
		case "y", "yes", "true":
			admin = true
		}
	}
	fmt.Fprintln(stdout, "Sending registration request...")
	err = sharedSecretRegister(ctx, serverURL, secret, localpart, password, admin, userType)
	var se *serverError
	if errors.As(err, &se) && existsOK && se.Code == "M_USER_IN_USE" {
		fmt.Fprintln(stdout, "User already exists. Skipping.")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Success!")
	return nil
}

// parseInterspersed parses flags before and after positional arguments, as
// Python's argparse (so Synapse's register_new_matrix_user) does:
// "-c FILE URL -u bob" sets -u. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" && !takesValue(fs, args, consumed-2) {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// takesValue reports whether args[i] is a flag whose value is the next
// argument ("-p --" sets the password to "--": it does not end the flags).
func takesValue(fs *flag.FlagSet, args []string, i int) bool {
	if i < 0 || !strings.HasPrefix(args[i], "-") || args[i] == "-" || args[i] == "--" || strings.Contains(args[i], "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(args[i], "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func readPassword(in *bufio.Reader, stdin io.Reader, stdout io.Writer, prompt string) (string, error) {
	fmt.Fprint(stdout, prompt)
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		return string(b), err
	}
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// secretFromConfig reads the shared secret and a client listener's URL
// from a configuration file, as register_new_matrix_user does (it reads the
// YAML loosely: only the keys it needs).
func secretFromConfig(path string) (secret, serverURL string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	var c struct {
		Secret     any    `yaml:"registration_shared_secret"`
		SecretPath string `yaml:"registration_shared_secret_path"`
		Listeners  []struct {
			Port      int    `yaml:"port"`
			Type      string `yaml:"type"`
			TLS       bool   `yaml:"tls"`
			Resources []struct {
				Names []string `yaml:"names"`
			} `yaml:"resources"`
		} `yaml:"listeners"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", "", fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case c.Secret != nil && c.SecretPath != "":
		return "", "", errors.New("Conflicting options 'registration_shared_secret' and 'registration_shared_secret_path' are both defined in config file.")
	case c.Secret != nil:
		s, ok := c.Secret.(string)
		if !ok {
			return "", "", errors.New("registration_shared_secret is not a string.")
		}
		secret = s
	case c.SecretPath != "":
		p := c.SecretPath
		if !strings.HasPrefix(p, "/") {
			p = strings.TrimSuffix(path, baseName(path)) + p
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", "", err
		}
		secret = strings.TrimSpace(string(b))
		if secret == "" {
			return "", "", errors.New("The secret given via `registration_shared_secret_path` must not be empty.")
		}
	default:
		return "", "", errors.New("No 'registration_shared_secret' or 'registration_shared_secret_path' defined in config.")
	}
	for _, l := range c.Listeners {
		if l.Type != "http" || l.TLS {
			continue
		}
		for _, r := range l.Resources {
			for _, n := range r.Names {
				if n == "client" {
					return secret, "http://localhost:" + strconv.Itoa(l.Port), nil
				}
			}
		}
	}
	return secret, "", nil
}

func baseName(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

type serverError struct {
	Status  int
	Code    string
	Message string
}

func (e *serverError) Error() string {
	return fmt.Sprintf("ERROR! Received %d %s: %s (%s)", e.Status, http.StatusText(e.Status), e.Message, e.Code)
}

func sharedSecretRegister(ctx context.Context, serverURL, secret, localpart, password string, admin bool, userType string) error {
	c := &http.Client{Timeout: 30 * time.Second}
	endpoint := strings.TrimRight(serverURL, "/") + "/_synapse/admin/v1/register"
	var nonce struct {
		Nonce string `json:"nonce"`
	}
	if err := doJSON(ctx, c, http.MethodGet, endpoint, nil, &nonce); err != nil {
		return err
	}
	body := map[string]any{
		"nonce":    nonce.Nonce,
		"username": localpart,
		"password": password,
		"admin":    admin,
		"mac":      hex.EncodeToString(clientapi.SharedSecretMAC(secret, nonce.Nonce, localpart, password, admin, userType)),
	}
	if userType != "" {
		body["user_type"] = userType
	} else {
		body["user_type"] = nil
	}
	return doJSON(ctx, c, http.MethodPost, endpoint, body, nil)
}

func doJSON(ctx context.Context, c *http.Client, method, url string, in, out any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var me struct {
			Code  string `json:"errcode"`
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &me)
		return &serverError{Status: resp.StatusCode, Code: me.Code, Message: me.Error}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
