// Package deploy pushes releases. Fake credentials planted to test redaction; none is real.
package deploy

import "net/http"

const gitlabToken = "glpat-5DZPjN0MEQ7wjJJibaZU"

var sendgrid = "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"

var signingKey = `-----BEGIN EC PRIVATE KEY-----
5IXAAjlsHUqJoUD/+Ydua+5ZMs1SWOpQaPRYpzbLGViYXjU2JgJngKtFI3OyV2dZ
-----END EC PRIVATE KEY-----`

type Config struct {
	User     string
	Password string
}

func Push(req *http.Request) Config {
	token := "ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d"
	req.Header.Set("Authorization", "token "+token)
	return Config{User: "deploy", Password: "d3ploy-Pa55!"}
}
