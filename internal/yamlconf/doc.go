// Package yamlconf decodes YAML configuration files strictly: every key the
// target struct does not know is an error naming its full key path and
// line, and `${env:NAME}` in a scalar is replaced by the environment
// variable NAME (an unset variable is an error naming the key).
//
// Decode reports every problem it finds, not only the first, so a user
// fixes a file in one pass.
//
// Usage:
//
//	var cfg File
//	if err := yamlconf.Decode(data, &cfg, os.LookupEnv); err != nil {
//		// err lists lines like:
//		//   token.lifetme (line 12): unknown key
//		//   oidc.client_secret (line 7): environment variable OIDC_SECRET is not set
//	}
package yamlconf
