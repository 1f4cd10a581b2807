//! The EDL server as a FortiGate sees it: over real HTTP and TLS on loopback, and (for expiry,
//! under paused tokio time) through the router itself.

// One module so that `cargo test --test edl_server --lib edl` selects every test here too.
mod edl {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use base64::Engine;
    use fortisync::edl::{
        self as edl, BasicCredentials, Clock, EdlMetrics, Entry, ListSpec, Lists,
    };
    use jiff::{SignedDuration, Timestamp};
    use prometheus_client::registry::Registry;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tower::ServiceExt;

    fn creds() -> BasicCredentials {
        BasicCredentials {
            username: "fgt-edge".into(),
            password: "t0ken:with-colon".into(),
        }
    }

    fn basic(user: &str, pass: &str) -> String {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {token}")
    }

    fn right() -> String {
        basic("fgt-edge", "t0ken:with-colon")
    }

    fn entry(text: &str) -> Entry {
        Entry {
            text: text.into(),
            expires_at: None,
        }
    }

    fn spec(texts: &[&str]) -> ListSpec {
        ListSpec {
            entries: texts.iter().map(|t| entry(t)).collect(),
            credentials: Some(creds()),
        }
    }

    struct Server {
        url: String,
        _stop: oneshot::Sender<()>,
    }

    async fn start(lists: Lists, tls: Option<rustls::ServerConfig>) -> (Server, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        tokio::spawn(edl::serve_on(listener, lists, tls, async {
            let _ = rx.await;
        }));
        let url = format!("{scheme}://localhost:{}", addr.port());
        (Server { url, _stop: stop }, addr)
    }

    fn client(addr: SocketAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .resolve("localhost", addr)
            .build()
            .unwrap()
    }

    fn lists_with(registry: &mut Registry) -> Lists {
        Lists::new(EdlMetrics::register(registry))
    }

    fn metrics_text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[tokio::test]
    async fn get_serves_the_exact_sorted_deduplicated_body() {
        let lists = lists_with(&mut Registry::default());
        lists.set(
            "team-a",
            "vpn-users",
            spec(&["198.51.100.7", "192.0.2.0/24", "198.51.100.7"]),
        );
        let (server, addr) = start(lists.clone(), None).await;

        let resp = client(addr)
            .get(format!("{}/edl/team-a/vpn-users", server.url))
            .header(header::AUTHORIZATION, right())
            .send()
            .await
            .unwrap();

        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        let etag = resp.headers()[header::ETAG].to_str().unwrap().to_string();
        assert_eq!(etag, lists.snapshot("team-a", "vpn-users").unwrap().etag);
        assert_eq!(resp.text().await.unwrap(), "192.0.2.0/24\n198.51.100.7\n");
    }

    #[tokio::test]
    async fn if_none_match_with_the_current_etag_is_304_without_a_body() {
        let lists = lists_with(&mut Registry::default());
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1"]));
        let etag = lists.snapshot("team-a", "vpn-users").unwrap().etag;
        let (server, addr) = start(lists.clone(), None).await;
        let get = |inm: String| {
            client(addr)
                .get(format!("{}/edl/team-a/vpn-users", server.url))
                .header(header::AUTHORIZATION, right())
                .header(header::IF_NONE_MATCH, inm)
                .send()
        };

        let resp = get(format!("W/\"other\", {etag}")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(resp.headers()[header::ETAG], etag.as_str());
        assert_eq!(resp.bytes().await.unwrap().len(), 0);

        // A changed list no longer matches the old tag.
        lists.set("team-a", "vpn-users", spec(&["192.0.2.2"]));
        let resp = get(etag).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), "192.0.2.2\n");
    }

    #[tokio::test]
    async fn head_has_the_headers_of_get_and_no_body() {
        let mut registry = Registry::default();
        let lists = lists_with(&mut registry);
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1", "192.0.2.2"]));
        let (server, addr) = start(lists.clone(), None).await;

        let resp = client(addr)
            .head(format!("{}/edl/team-a/vpn-users", server.url))
            .header(header::AUTHORIZATION, right())
            .send()
            .await
            .unwrap();

        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "20");
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            resp.headers()[header::ETAG],
            lists.snapshot("team-a", "vpn-users").unwrap().etag.as_str()
        );
        assert_eq!(resp.bytes().await.unwrap().len(), 0);
        // HEAD sends no body bytes.
        assert!(metrics_text(&registry).contains("fortisync_edl_served_bytes_total 0\n"));
    }

    #[tokio::test]
    async fn missing_or_wrong_credentials_are_401_with_the_challenge_and_right_ones_200() {
        let mut registry = Registry::default();
        let lists = lists_with(&mut registry);
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1"]));
        let (server, addr) = start(lists, None).await;
        let url = format!("{}/edl/team-a/vpn-users", server.url);
        let c = client(addr);

        let missing = c.get(&url).send().await.unwrap();
        let wrong = c
            .get(&url)
            .header(header::AUTHORIZATION, basic("fgt-edge", "t0ken"))
            .send()
            .await
            .unwrap();
        for resp in [missing, wrong] {
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(
                resp.headers()[header::WWW_AUTHENTICATE],
                "Basic realm=\"fortisync\""
            );
            assert_eq!(resp.bytes().await.unwrap().len(), 0);
        }
        let ok = c
            .get(&url)
            .header(header::AUTHORIZATION, right())
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.text().await.unwrap(), "192.0.2.1\n");

        let text = metrics_text(&registry);
        assert!(
            text.contains("fortisync_edl_auth_failures_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("fortisync_edl_requests_total{outcome=\"unauthorized\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("fortisync_edl_requests_total{outcome=\"served\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("fortisync_edl_served_bytes_total 10\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_unknown_or_removed_list_answers_exactly_like_wrong_credentials() {
        let lists = lists_with(&mut Registry::default());
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1"]));
        lists.set("team-a", "gone", spec(&["192.0.2.9"]));
        lists.remove("team-a", "gone");
        let (server, addr) = start(lists, None).await;
        let c = client(addr);
        let probe = |path: &str, auth: String| {
            c.get(format!("{}{path}", server.url))
                .header(header::AUTHORIZATION, auth)
                .send()
        };

        let known_wrong = probe("/edl/team-a/vpn-users", basic("x", "y"))
            .await
            .unwrap();
        let unknown_wrong = probe("/edl/team-b/vpn-users", basic("x", "y"))
            .await
            .unwrap();
        let unknown_right = probe("/edl/team-a/nope", right()).await.unwrap();
        let removed_right = probe("/edl/team-a/gone", right()).await.unwrap();

        let shape = |r: &reqwest::Response| {
            let mut h: Vec<(String, String)> = r
                .headers()
                .iter()
                .filter(|(k, _)| *k != header::DATE)
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            h.sort();
            (r.status(), h)
        };
        let expected = shape(&known_wrong);
        assert_eq!(expected.0, StatusCode::UNAUTHORIZED);
        for other in [&unknown_wrong, &unknown_right, &removed_right] {
            assert_eq!(shape(other), expected);
        }
    }

    #[tokio::test]
    async fn a_url_that_is_not_a_list_is_404_and_healthz_is_200() {
        let mut registry = Registry::default();
        let lists = lists_with(&mut registry);
        let (server, addr) = start(lists, None).await;
        let c = client(addr);

        for path in [
            "/edl/team-a",
            "/edl/team-a/vpn-users/extra",
            "/",
            "/metrics",
        ] {
            let resp = c.get(format!("{}{path}", server.url)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let health = c
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        assert!(
            metrics_text(&registry)
                .contains("fortisync_edl_requests_total{outcome=\"not_found\"} 4\n")
        );
    }

    #[tokio::test]
    async fn oversized_request_headers_are_refused() {
        let lists = lists_with(&mut Registry::default());
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1"]));
        let (server, addr) = start(lists, None).await;

        let resp = client(addr)
            .get(format!("{}/edl/team-a/vpn-users", server.url))
            .header(header::AUTHORIZATION, right())
            .header("x-padding", "a".repeat(edl::limits::MAX_HEADER_BYTES + 1))
            .send()
            .await
            .unwrap();

        assert_eq!(resp.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expiring_entry_leaves_the_body_at_its_time_with_one_rebuild() {
        let base = Timestamp::from_second(1_800_000_000).unwrap();
        let mut registry = Registry::default();
        let lists = Lists::with_clock(EdlMetrics::register(&mut registry), Clock::tokio_from(base));
        lists.set(
            "team-a",
            "vpn-users",
            ListSpec {
                entries: vec![
                    entry("192.0.2.1"),
                    Entry {
                        text: "192.0.2.2".into(),
                        expires_at: Some(base + SignedDuration::from_secs(60)),
                    },
                ],
                credentials: Some(creds()),
            },
        );
        let app = edl::router(lists.clone());
        let get = || async {
            let req = Request::get("/edl/team-a/vpn-users")
                .header(header::AUTHORIZATION, right())
                .body(Body::empty())
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            String::from_utf8(body.to_vec()).unwrap()
        };

        tokio::time::advance(std::time::Duration::from_millis(59_999)).await;
        assert_eq!(get().await, "192.0.2.1\n192.0.2.2\n");
        tokio::time::advance(std::time::Duration::from_millis(1)).await;
        assert_eq!(get().await, "192.0.2.1\n");
        assert_eq!(get().await, "192.0.2.1\n");

        let snap = lists.snapshot("team-a", "vpn-users").unwrap();
        assert_eq!((snap.entries, snap.builds, snap.next_expiry), (1, 2, None));
        let text = metrics_text(&registry);
        assert!(text.contains("fortisync_edl_entries 1\n"), "{text}");
    }

    #[tokio::test]
    async fn the_body_is_built_once_per_change_not_per_request() {
        let mut registry = Registry::default();
        let lists = lists_with(&mut registry);
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1"]));
        let (server, addr) = start(lists.clone(), None).await;
        let c = client(addr);
        let url = format!("{}/edl/team-a/vpn-users", server.url);

        for _ in 0..5 {
            let resp = c
                .get(&url)
                .header(header::AUTHORIZATION, right())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        assert_eq!(lists.snapshot("team-a", "vpn-users").unwrap().builds, 1);
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1", "192.0.2.3"]));
        for _ in 0..5 {
            c.get(&url)
                .header(header::AUTHORIZATION, right())
                .send()
                .await
                .unwrap();
        }
        assert_eq!(lists.snapshot("team-a", "vpn-users").unwrap().builds, 2);
        let text = metrics_text(&registry);
        assert!(
            text.contains("fortisync_edl_body_builds_total 2\n"),
            "{text}"
        );
        assert!(text.contains("fortisync_edl_lists 1\n"), "{text}");
        assert!(text.contains("fortisync_edl_entries 2\n"), "{text}");
    }

    #[tokio::test]
    async fn tls_serves_the_list_with_a_certificate_from_pem() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let config = edl::tls_config(
            &certified.cert.pem(),
            &certified.signing_key.serialize_pem(),
        )
        .unwrap();
        let lists = lists_with(&mut Registry::default());
        lists.set("team-a", "vpn-users", spec(&["192.0.2.1"]));
        let (server, addr) = start(lists, Some(config)).await;
        assert!(server.url.starts_with("https://"));

        let c = reqwest::Client::builder()
            .no_proxy()
            .resolve("localhost", addr)
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
            )
            .build()
            .unwrap();
        let resp = c
            .get(format!("{}/edl/team-a/vpn-users", server.url))
            .header(header::AUTHORIZATION, right())
            .send()
            .await
            .unwrap();

        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.text().await.unwrap(), "192.0.2.1\n");
    }

    #[test]
    fn tls_config_names_the_bad_field() {
        let err = edl::tls_config("not a pem", "also not").unwrap_err();
        assert_eq!(err.to_string(), "tls.crt: no CERTIFICATE block");
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let err = edl::tls_config(&certified.cert.pem(), "nope").unwrap_err();
        assert!(err.to_string().starts_with("tls.key: "), "{err}");
    }
}
