// Command dex-bench serves Dex's own HTTP server (github.com/dexidp/dex/server) the way
// `dex serve` does, configured as scripts/bench-peers needs it: in-memory storage, the
// default local signer (RS256, keys rotated every 6h), one confidential static client, the
// client_credentials grant only, and the password database as the one connector Dex
// requires (unused here).
//
// Why not Dex's own command: cmd/dex also serves Dex's gRPC admin API, whose module
// (github.com/dexidp/dex/api/v2) at the version matching this Dex commit is not served by the
// Go module proxy this project reaches, and the released api/v2 v2.4.0 lacks messages that
// commit uses. The token endpoint, client authentication, token minting and signing below
// are Dex's code, unchanged; only the launcher is ours.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	gosundheit "github.com/AppsFlyer/go-sundheit"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dexidp/dex/server"
	"github.com/dexidp/dex/server/connectors"
	"github.com/dexidp/dex/server/signer"
	"github.com/dexidp/dex/server/tokens"
	"github.com/dexidp/dex/storage"
	"github.com/dexidp/dex/storage/memory"
)

func main() {
	issuer := flag.String("issuer", "", "issuer URL, e.g. http://127.0.0.1:5556")
	listen := flag.String("listen", "127.0.0.1:5556", "address of the HTTP server")
	clientID := flag.String("client-id", "bench", "the confidential client's id")
	flag.Parse()
	// The secret comes from the environment so that it shows in no process listing.
	secret := os.Getenv("DEX_CLIENT_SECRET")
	if *issuer == "" || secret == "" {
		log.Fatal("need -issuer and DEX_CLIENT_SECRET")
	}

	// Dex's default logger: text at info level on stderr.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	now := func() time.Time { return time.Now().UTC() }

	store, err := (&memory.Config{}).Open(logger)
	if err != nil {
		log.Fatal(err)
	}
	store = storage.WithStaticClients(store, []storage.Client{{
		ID:           *clientID,
		Secret:       secret,
		Name:         *clientID,
		RedirectURIs: []string{"http://127.0.0.1/callback"},
	}})
	store = storage.WithStaticConnectors(store, []storage.Connector{{
		ID: connectors.LocalConnector, Name: "Email", Type: connectors.LocalConnector,
	}})

	// As `dex serve` with no signer section: the local signer, RS256, 6h rotation, 24h ID tokens.
	idTokensValidFor := 24 * time.Hour
	sign, err := (&signer.LocalConfig{KeysRotationPeriod: "6h"}).Open(context.Background(), store, idTokensValidFor, now, logger)
	if err != nil {
		log.Fatal(err)
	}
	refresh, err := tokens.NewRefreshTokenPolicy(logger, false, "", "", "")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.NewServer(context.Background(), server.Config{
		Issuer:             *issuer,
		Storage:            store,
		AllowedGrantTypes:  []string{"client_credentials"},
		IDTokensValidFor:   idTokensValidFor,
		RefreshTokenPolicy: refresh,
		Now:                now,
		Logger:             logger,
		Signer:             sign,
		// `dex serve` passes its registry, so the server records its HTTP metrics; so do we.
		PrometheusRegistry: prometheus.NewRegistry(),
		HealthChecker:      gosundheit.New(),
	})
	if err != nil {
		log.Fatal(err)
	}
	logger.Info("listening on", "server", "http", "address", *listen)
	log.Fatal((&http.Server{Addr: *listen, Handler: srv}).ListenAndServe())
}
