using System.Text;

namespace Identity.Server.IntegrationTests.BadInput;

/// <summary>
/// One step of the corpus: usually a single request; a few known defects need requests sent together (a race) or
/// in order. Every request of a wave is sent at once; waves follow each other.
/// </summary>
public sealed record CorpusEntry(string Name, IReadOnlyList<IReadOnlyList<RawRequest>> Waves)
{
    public static CorpusEntry Of(string name, RawRequest request) => new(name, [[request]]);
}

/// <summary>
/// The bad-input corpus: a deterministic function of (seed, index) and the server's <see cref="CorpusTargets"/>.
/// Request <c>i</c> comes from its own <see cref="Random"/>, so any one of them can be generated again alone; endpoint
/// families take turns (weighted), so even a small corpus reaches every family.
/// </summary>
public sealed class BadInputCorpus
{
    public const string KnownDefectFamily = "known-defect";

    /// <summary>The admin API's body limit (issue 15 item 7: for every body, chunked too).</summary>
    public const int AdminBodyLimit = 64 * 1024;

    /// <summary>The protocol endpoints' body limit (ProtocolRequestGuard).</summary>
    public const int ProtocolBodyLimit = 16 * 1024;

    /// <summary>An account id that exists nowhere: where a request could delete the account it names.</summary>
    private static readonly Guid NoSuchAccount = new("0b5e55ed-0000-4000-8000-000000000015");
    private const string JwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    private const string WebRedirect = "https://eu.app.test/signin-oidc";

    private static readonly string[] OddReturnUrls =
    [
        "/", "%2F", "/caf%C3%A9", "%2Fcaf%C3%A9", "/%E6%97%A5%E6%9C%AC", "//evil.example", "/%5Cevil.example", "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example", "javascript%3Aalert(1)", "/%0D%0ASet-Cookie:%20x=y", "/%00", "%E9", "/%C3%28", "/%FF", "~/x",
        "/Account/Login%3FReturnUrl%3D%252FAccount%252FLogin", "/connect/authorize%3Fclient_id%3Dweb-eu%26response_type%3Dcode",
        "/connect/authorize%3Fclient_id%3Dweb-eu%26response_type%3Dcode%2520code%26redirect_uri%3Dhttps%253A%252F%252Feu.app.test%252Fsignin-oidc",
        "/%E2%80%AE", "/a%20b", "/%2e%2e/%2e%2e/admin", "/" + new string('a', 3000), "", "%", "/x%3Fy%3D%C3%A9",
    ];

    private readonly CorpusTargets _t;
    private readonly (string Name, Func<Random, RequestDraft> Make)[] _turns;

    public BadInputCorpus(CorpusTargets targets)
    {
        _t = targets;
        (string, int, Func<Random, RequestDraft>)[] families =
        [
            ("discovery", 1, Discovery),
            ("authorize", 3, Authorize),
            ("consent", 1, Consent),
            ("token", 4, Token),
            ("introspect", 1, r => IntrospectOrRevoke(r, "introspect")),
            ("revoke", 1, r => IntrospectOrRevoke(r, "revoke")),
            ("userinfo", 1, UserInfo),
            ("endsession", 1, EndSession),
            ("login", 2, Login),
            ("login-correct-password", 1, LoginWithCorrectPassword),
            ("two-factor", 1, TwoFactor),
            ("passkeys", 2, Passkeys),
            ("account-pages", 1, AccountPages),
            ("admin", 8, Admin),
            ("sync", 1, Sync),
            ("health-and-static", 1, HealthAndStatic),
        ];
        _turns = [.. families.SelectMany(f => Enumerable.Repeat((f.Item1, f.Item3), f.Item2))];
    }

    public IEnumerable<string> Families => _turns.Select(t => t.Name).Distinct();

    public IEnumerable<CorpusEntry> Generate(int seed, int count) =>
        Enumerable.Range(0, count).Select(i => CorpusEntry.Of($"seed {seed} #{i}", Request(seed, i)));

    /// <summary>Request <paramref name="index"/> of the corpus of <paramref name="seed"/>.</summary>
    public RawRequest Request(int seed, int index)
    {
        var random = new Random(unchecked((seed * 486_187_739) ^ (index * 16_777_619) ^ index));
        var (_, make) = _turns[index % _turns.Length];
        var draft = make(random);
        Mutations.Apply(draft, random);
        if (draft.Family == "admin" && draft.Method != "GET" && RequestDraft.HasDotSegment(draft.Path))
        {
            // Until dot segments are refused (issue 15 item 6), …/users/.. reaches the account itself: keep the corpus's
            // own account out of it, or every later request would find it gone.
            draft.Path = draft.Path.Replace(_t.AccountId.ToString(), NoSuchAccount.ToString(), StringComparison.Ordinal);
        }

        return draft.Build();
    }

    // --- Protocol endpoints (OpenID Connect Core, RFC 6749, RFC 7662, RFC 7009) ---

    private RequestDraft Discovery(Random r)
    {
        var draft = new RequestDraft("discovery", "GET", r.Pick(["/.well-known/openid-configuration", "/.well-known/jwks", "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration/jwks", "/.well-known/"]));
        if (r.Chance(0.3))
        {
            draft.Query.Add(new Param(Junk.Encoded(r), Junk.Encoded(r)));
        }

        return draft;
    }

    /// <summary>The authorization endpoint, GET (query) or POST (form), signed in or not (OpenID Connect Core §3.1.2.1).</summary>
    private RequestDraft Authorize(Random r)
    {
        var post = r.Chance(0.3);
        var draft = new RequestDraft("authorize", post ? "POST" : "GET", "/connect/authorize");
        draft.BodyLimit = ("POST", ProtocolBodyLimit);
        // A request valid for a signed-in user, then one or two parameters set to an odd value (or added): each
        // deviation then reaches the code that handles it instead of stopping at an earlier error.
        List<Param> p =
        [
            Param.Of("client_id", "web-eu"), Param.Of("response_type", "code"), Param.Of("redirect_uri", WebRedirect), Param.Of("scope", "openid profile"),
            Param.Of("state", "s"), Param.Of("nonce", "n"), Param.Of("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            Param.Of("code_challenge_method", "S256"),
        ];
        for (var i = r.Next(3); i > 0; i--)
        {
            var (name, values) = r.Pick(AuthorizeOddities);
            var value = name is "request" or "id_token_hint" ? Junk.Jwt(r, _t.IdToken) : r.Pick(values);
            p.RemoveAll(x => x.Name == name);
            p.Add(Param.Of(name, value));
            draft.Steps.Add($"{name}={(value.Length > 30 ? value[..30] + "…" : value)}");
        }

        if (post)
        {
            draft.WithForm([.. p]);
            if (r.Chance(0.3))
            {
                draft.Form!.Add(Param.Of("__RequestVerificationToken", _t.SignedIn.FormToken));
            }
        }
        else
        {
            draft.Query.AddRange(p);
        }

        if (r.Chance(0.75))
        {
            draft.SetHeader("Cookie", _t.Session + (post ? "; " + _t.SignedIn.Cookie : ""));
        }

        return draft;
    }

    private static readonly (string Name, string[] Values)[] AuthorizeOddities =
    [
        ("client_id", ["partner", "svc-basic", "unknown-client", "admin-console", "", "WEB-EU", "web-eu\u0000"]),
        ("response_type", ["code code", "code  code", " code", "code ", "token", "id_token", "code id_token", "code token", "none", "", "CODE",
            "code\u00a0code", "code+code", "code\tcode", "id_token code"]),
        ("redirect_uri", ["https://partner.example/signin-oidc", "https://evil.example/cb", "", "not a uri", WebRedirect + "?x=1", WebRedirect + "#frag",
            "HTTPS://EU.APP.TEST/signin-oidc", "https://eu.app.test:443/signin-oidc", "javascript:alert(1)", "https://eu.app.test/signin-oidc/../x"]),
        ("scope", ["openid", "openid profile email offline_access", "openid api.read", "profile", "", "openid identity.admin", "openid openid",
            "openid\tprofile", "openid " + new string('s', 300), "OPENID", "openid junk"]),
        ("state", ["", new string('s', 2000), "\u00e9\u0000"]),
        ("nonce", ["", new string('n', 2000)]),
        ("code_challenge", ["short", "", new string('c', 200), "!!!invalid!!!"]),
        ("code_challenge_method", ["plain", "", "s256", "S512"]),
        ("prompt", ["none", "login", "consent", "select_account", "none login", "junk", "", "create"]),
        ("max_age", ["0", "-1", "abc", "1e9", "99999999999999999999", "0.5", ""]),
        ("response_mode", ["query", "fragment", "form_post", "query.jwt", "junk", ""]),
        ("login_hint", ["ada@example.test", "", "\u0000", new string('h', 5000)]),
        ("acr_values", ["urn:identity:acr:mfa", "junk", "", "a b c"]),
        ("ui_locales", ["fr", "xx-YY", "", "en;q=junk"]),
        ("claims", ["{\"id_token\":{\"email\":null}}", "{", "[]", "null", "{\"userinfo\":{\"x\":{\"essential\":\"yes\"}}}"]),
        ("request_uri", ["urn:ietf:params:oauth:request_uri:junk", "https://evil.example/r", ""]),
        ("resource", ["https://api.test", "not a uri", "https://evil.example", ""]),
        ("registration", ["{}", "junk"]),
        ("display", ["page", "popup", "junk"]),
        ("request", []),
        ("id_token_hint", []),
    ];

    /// <summary>The consent form of a third-party client: the authorize POST with a decision.</summary>
    private RequestDraft Consent(Random r)
    {
        var draft = new RequestDraft("consent", "POST", "/connect/authorize");
        draft.BodyLimit = ("POST", ProtocolBodyLimit);
        // As the consent page posts it: the authorization request in hidden fields, and the button pressed.
        draft.WithForm(Param.Of("client_id", "partner"), Param.Of("response_type", "code"),
            Param.Of("redirect_uri", "https://partner.example/signin-oidc"), Param.Of("scope", "openid profile"), Param.Of("state", "s"),
            Param.Of("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"), Param.Of("code_challenge_method", "S256"),
            Param.Of("decision", r.Pick(["allow", "allow", "deny", "", "ALLOW", "maybe", "allow,deny"])));
        AddAntiforgery(draft, r, _t.SignedIn);
        draft.SetHeader("Cookie", _t.Session + "; " + _t.SignedIn.Cookie);
        return draft;
    }

    /// <summary>The token endpoint: every grant type, every client authentication method, each broken in turn.</summary>
    private RequestDraft Token(Random r)
    {
        var draft = new RequestDraft("token", "POST", "/connect/token");
        draft.BodyLimit = ("POST", ProtocolBodyLimit);
        var grant = r.Pick(["client_credentials", "client_credentials", "client_credentials", "client_credentials", "authorization_code", "refresh_token", "refresh_token", "password", "implicit",
            "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer", "", "junk", "CLIENT_CREDENTIALS"]);
        var form = new List<Param> { Param.Of("grant_type", grant) };
        switch (grant)
        {
            case "authorization_code":
                form.Add(Param.Of("code", r.Chance(0.5) ? Junk.Jwt(r) : r.Pick(["", "abc", new string('c', 5000)])));
                form.Add(Param.Of("redirect_uri", r.Pick([WebRedirect, "", "https://evil.example"])));
                form.Add(Param.Of("code_verifier", r.Pick(["dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "", "short", new string('v', 200)])));
                break;
            case "refresh_token":
                form.Add(Param.Of("refresh_token", r.Chance(0.2) ? _t.RefreshToken : Junk.Jwt(r, _t.RefreshToken)));
                break;
            case "password":
                form.Add(Param.Of("username", Junk.Text(r)));
                form.Add(Param.Of("password", Junk.Text(r)));
                break;
            case "urn:ietf:params:oauth:grant-type:token-exchange":
                form.Add(Param.Of("subject_token", Junk.Jwt(r, _t.UserAccessToken)));
                form.Add(Param.Of("subject_token_type", r.Pick(["urn:ietf:params:oauth:token-type:access_token", "junk"])));
                break;
            case "urn:ietf:params:oauth:grant-type:jwt-bearer":
                form.Add(Param.Of("assertion", Junk.Jwt(r, _t.ClientAssertion)));
                break;
            case "urn:ietf:params:oauth:grant-type:device_code":
                form.Add(Param.Of("device_code", Junk.Text(r)));
                break;
        }

        if (r.Chance(0.7))
        {
            form.Add(Param.Of("scope", r.Pick(["api.read", "api.read api.write", "identity.admin", "openid", "", "api.read api.read", "junk", new string('s', 3000)])));
        }

        if (r.Chance(0.1))
        {
            form.Add(Param.Of("resource", r.Pick(["https://api.test", "junk", "https://evil.example"])));
        }

        draft.WithForm([.. form]);
        ClientAuthentication(draft, r, grant is "authorization_code" or "refresh_token" ? "web-eu" : "svc-basic");
        return draft;
    }

    private RequestDraft IntrospectOrRevoke(Random r, string endpoint)
    {
        var draft = new RequestDraft(endpoint, "POST", "/connect/" + endpoint);
        draft.BodyLimit = ("POST", ProtocolBodyLimit);
        var token = r.Next(5) switch
        {
            0 => _t.UserAccessToken,
            1 => _t.ServiceToken,
            2 => Junk.Text(r),
            _ => Junk.Jwt(r, _t.UserAccessToken),
        };
        draft.WithForm(Param.Of("token", token));
        if (r.Chance(0.5))
        {
            draft.Form!.Add(Param.Of("token_type_hint", r.Pick(["access_token", "refresh_token", "id_token", "junk", "", "authorization_code"])));
        }

        ClientAuthentication(draft, r, r.Pick(["svc-basic", "web-eu"]));
        return draft;
    }

    /// <summary>
    /// Client authentication (RFC 6749 §2.3, RFC 7523 §2.2), each variant broken somewhere: Basic with bad base64,
    /// non-UTF-8 bytes, no colon, percent-encoding; client_secret_post; private_key_jwt with malformed assertions.
    /// </summary>
    private void ClientAuthentication(RequestDraft draft, Random r, string clientId)
    {
        var secret = clientId == "web-eu" ? _t.WebSecret : _t.BasicSecret;
        string Basic(string credentials) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials));
        switch (r.Next(15))
        {
            case 0:
            case 1:
            case 11:
            case 12:
            case 13:
                draft.SetHeader("Authorization", Basic($"{clientId}:{secret}"));
                draft.Steps.Add("basic");
                break;
            case 2:
                draft.SetHeader("Authorization", r.Pick(["Basic !!!notbase64", "Basic " + Basic("x")[6..^1], "Basic ====", "Basic", "Basic  " + Basic("a:b")[6..],
                    "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{clientId}:{secret}")).Replace('+', '-').Replace('/', '_').TrimEnd('=')]));
                draft.Steps.Add("basic-bad-base64");
                break;
            case 3:
                draft.SetHeader("Authorization", "Basic " + Convert.ToBase64String(r.Pick<byte[]>([[0xFF, 0xFE, 0x3A, 0x80], [0xC3, 0x28, 0x3A, 0xC0, 0xAF],
                    [.. Encoding.UTF8.GetBytes(clientId), 0x3A, 0xED, 0xA0, 0x80], [0x00, 0x3A, 0x00]])));
                draft.Steps.Add("basic-non-utf8");
                break;
            case 4:
                draft.SetHeader("Authorization", Basic(r.Pick([clientId, clientId + secret, "", ":", $":{secret}", $"{clientId}:", $"{clientId}::{secret}"])));
                draft.Steps.Add("basic-colonless-or-empty");
                break;
            case 5:
                draft.SetHeader("Authorization", Basic(r.Pick([$"{clientId}%ZZ:{secret}", $"{clientId}:{secret}%", $"%73vc-basic:{secret}", $"{clientId}%3A:{secret}",
                    $"{clientId}:{Uri.EscapeDataString(secret)}%C3%28", $"{new string('c', 5000)}:{secret}"])));
                draft.Steps.Add("basic-percent-encoding");
                break;
            case 6:
                draft.Form!.Add(Param.Of("client_id", clientId));
                draft.Form.Add(Param.Of("client_secret", r.Chance(0.5) ? secret : Junk.Text(r)));
                draft.Steps.Add("client-secret-post");
                if (r.Chance(0.3))
                {
                    draft.SetHeader("Authorization", Basic($"{clientId}:{secret}"));
                    draft.Steps.Add("and-basic");
                }

                break;
            case 7:
            case 8:
            case 9:
                draft.Form!.Add(Param.Of("client_assertion_type", r.Chance(0.85) ? JwtBearer : r.Pick(["", "junk", JwtBearer + " ", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"])));
                draft.Form.Add(Param.Of("client_assertion", r.Chance(0.1) ? _t.ClientAssertion : Junk.Jwt(r, _t.ClientAssertion, _t.Issuer)));
                if (r.Chance(0.5))
                {
                    draft.Form.Add(Param.Of("client_id", r.Pick(["svc-jwt", "svc-basic", "other"])));
                }

                draft.Steps.Add("private-key-jwt");
                break;
            case 10:
                draft.Form!.Add(Param.Of("client_id", r.Pick([clientId, "svc-jwt", "unknown", ""])));
                draft.Steps.Add("public");
                break;
            default:
                draft.Steps.Add("no-client-authentication");
                break;
        }

        if (draft.Header("Authorization") is not null)
        {
            draft.Protected.Add("client_secret");
        }
    }

    private RequestDraft UserInfo(Random r)
    {
        var draft = new RequestDraft("userinfo", r.Pick(["GET", "POST"]), "/connect/userinfo");
        draft.BodyLimit = ("POST", ProtocolBodyLimit);
        var token = r.Next(6) switch
        {
            0 => _t.UserAccessToken,
            1 => _t.ServiceToken,
            2 => _t.AdminToken,
            3 => _t.IdToken,
            _ => Junk.Jwt(r, _t.UserAccessToken),
        };
        if (draft.Method == "POST" && r.Chance(0.4))
        {
            draft.WithForm(Param.Of("access_token", token));
        }
        else if (r.Chance(0.15))
        {
            draft.Query.Add(Param.Of("access_token", token));
        }
        else
        {
            draft.SetHeader("Authorization", r.Pick(["Bearer ", "Bearer  ", "bearer ", "DPoP ", "Bearer \t"]) + token);
        }

        return draft;
    }

    private RequestDraft EndSession(Random r)
    {
        var post = r.Chance(0.5);
        var draft = new RequestDraft("endsession", post ? "POST" : "GET", "/connect/endsession");
        draft.BodyLimit = ("POST", ProtocolBodyLimit);
        List<Param> p = [];
        if (r.Chance(0.7))
        {
            p.Add(Param.Of("id_token_hint", r.Chance(0.3) ? _t.IdToken : Junk.Jwt(r, _t.IdToken)));
        }

        if (r.Chance(0.6))
        {
            p.Add(Param.Of("post_logout_redirect_uri", r.Pick(["https://eu.app.test/signout-callback-oidc", "https://evil.example/", "", "junk", "javascript:alert(1)"])));
        }

        if (r.Chance(0.5))
        {
            p.Add(Param.Of(r.Pick(["state", "client_id", "logout_hint", "ui_locales"]), r.Pick(["web-eu", "partner", Junk.Text(r)])));
        }

        if (post)
        {
            draft.WithForm([.. p]); // the end-session page posts the request back in hidden fields
            AddAntiforgery(draft, r, _t.EndableSignedIn);
            draft.SetHeader("Cookie", _t.EndableSession + "; " + _t.EndableSignedIn.Cookie);
        }
        else
        {
            draft.Query.AddRange(p);
            if (r.Chance(0.5))
            {
                draft.SetHeader("Cookie", _t.EndableSession);
            }
        }

        return draft;
    }

    // --- Account pages (Razor Pages) ---

    private static void AddAntiforgery(RequestDraft draft, Random r, Antiforgery pair)
    {
        switch (r.Next(8))
        {
            case 0:
                draft.Steps.Add("no-antiforgery");
                return;
            case 1:
                draft.Form ??= [];
                draft.Form.Add(Param.Of("__RequestVerificationToken", r.Pick(["", "junk", Junk.Base64Url(Junk.RandomBytes(r, 120)), pair.FormToken + "x"])));
                draft.Steps.Add("bad-antiforgery");
                return;
            case 2:
                draft.SetHeader("RequestVerificationToken", pair.FormToken);
                draft.Steps.Add("antiforgery-header");
                break;
            default:
                draft.Form ??= [];
                draft.Form.Add(Param.Of("__RequestVerificationToken", pair.FormToken));
                break;
        }

        var cookie = draft.Header("Cookie");
        if (cookie is null || !cookie.Contains(pair.Cookie, StringComparison.Ordinal))
        {
            draft.SetHeader("Cookie", cookie is null ? pair.Cookie : cookie + "; " + pair.Cookie);
        }
    }

    private RequestDraft Login(Random r)
    {
        var post = r.Chance(0.6);
        var draft = new RequestDraft("login", post ? "POST" : "GET", "/Account/Login");
        if (r.Chance(0.8))
        {
            draft.Query.Add(new Param("ReturnUrl", r.Pick(OddReturnUrls)));
        }

        if (post)
        {
            draft.WithForm(Param.Of("Input.Email", r.Pick(["nobody@example.test", "", "not-an-email", Junk.Text(r), "victim@example.test"])),
                Param.Of("Input.Password", r.Pick(["wrong", "", Junk.Text(r), new string('p', 5000)])));
            if (r.Chance(0.2))
            {
                draft.Form!.Add(new Param("ReturnUrl", r.Pick(OddReturnUrls)));
            }

            AddAntiforgery(draft, r, _t.Anonymous);
        }

        return draft;
    }

    /// <summary>The right password for a user without lockout, so the code after a successful password check is reached.</summary>
    private RequestDraft LoginWithCorrectPassword(Random r)
    {
        var draft = new RequestDraft("login-correct-password", "POST", "/Account/Login");
        var returnUrl = new Param("ReturnUrl", r.Pick(OddReturnUrls));
        if (r.Chance(0.8))
        {
            draft.Query.Add(returnUrl);
        }

        draft.WithForm(Param.Of("Input.Email", _t.SignInEmail), Param.Of("Input.Password", _t.SignInPassword));
        if (r.Chance(0.2))
        {
            draft.Form!.Add(returnUrl);
        }

        draft.Protected.UnionWith(["Input.Email", "Input.Password"]);
        AddAntiforgery(draft, r, _t.Anonymous);
        return draft;
    }

    private RequestDraft TwoFactor(Random r)
    {
        var (path, handler, field) = r.Pick([("/Account/TwoFactor", "Totp", "code"), ("/Account/TwoFactor", "Recovery", "recovery"),
            ("/Account/TwoFactorPasskey", "Options", ""), ("/Account/TwoFactorPasskey", "", "credential"), ("/Account/TwoFactor", "", "")]);
        var post = field.Length > 0 || handler.Length > 0 ? r.Chance(0.8) : r.Chance(0.2);
        var draft = new RequestDraft("two-factor", post ? "POST" : "GET", path);
        if (handler.Length > 0)
        {
            draft.Query.Add(Param.Of("handler", r.Chance(0.9) ? handler : Junk.Text(r)));
        }

        draft.Query.Add(new Param("ReturnUrl", r.Pick(OddReturnUrls)));
        if (post)
        {
            draft.WithForm();
            if (field.Length > 0)
            {
                draft.Form!.Add(Param.Of(field, field == "credential" ? WebAuthnJunk(r) : r.Pick(["123456", "", "abcdef", "12345678901234567890", "0000-0000", Junk.Text(r)])));
            }

            AddAntiforgery(draft, r, r.Chance(0.5) ? _t.Anonymous : _t.SignedIn);
        }

        if (r.Chance(0.4))
        {
            draft.SetHeader("Cookie", (draft.Header("Cookie") is { } c ? c + "; " : "") + r.Pick([".AspNetCore.Identity.TwoFactorUserId=junk",
                ".AspNetCore.Identity.TwoFactorUserId=" + Junk.Base64Url(Junk.RandomBytes(r, 200)), _t.Session]));
        }

        return draft;
    }

    /// <summary>Passkey sign-in and management (WebAuthn): option requests and credentials that are not WebAuthn JSON.</summary>
    private RequestDraft Passkeys(Random r)
    {
        var (path, handler, fields, signedIn) = r.Pick<(string, string, string[], bool)>([
            ("/Account/PasskeySignIn", "Options", [], false), ("/Account/PasskeySignIn", "", ["credential"], false),
            ("/Account/Passkeys", "", [], true), ("/Account/Passkeys", "Options", [], true), ("/Account/Passkeys", "Add", ["name", "credential"], true),
            ("/Account/Passkeys", "Remove", ["id"], true)]);
        var post = handler.Length > 0 || fields.Length > 0 ? r.Chance(0.85) : r.Chance(0.2);
        var draft = new RequestDraft("passkeys", post ? "POST" : "GET", path);
        if (handler.Length > 0)
        {
            draft.Query.Add(Param.Of("handler", handler));
        }

        if (r.Chance(0.3))
        {
            draft.Query.Add(new Param("ReturnUrl", r.Pick(OddReturnUrls)));
        }

        if (signedIn && r.Chance(0.85))
        {
            draft.SetHeader("Cookie", _t.Session);
        }

        if (post)
        {
            draft.WithForm([.. fields.Select(f => Param.Of(f, f == "credential" ? WebAuthnJunk(r) : f == "id" ? Junk.Base64Url(Junk.RandomBytes(r, r.Next(0, 100))) : Junk.Text(r)))]);
            AddAntiforgery(draft, r, signedIn ? _t.SignedIn : _t.Anonymous);
        }

        return draft;
    }

    /// <summary>A credential field that WebAuthn (Level 3 §5.1) would never produce: broken JSON, wrong types, junk base64url.</summary>
    private static string WebAuthnJunk(Random r)
    {
        var bytes = Junk.JsonBody(r, [("id", "\"" + Junk.Base64Url(Junk.RandomBytes(r, 16)) + "\""), ("rawId", "\"AAAA\""), ("type", "\"public-key\""),
            ("response", r.Pick(["{\"clientDataJSON\":\"" + Junk.Base64Url("{\"type\":\"webauthn.get\",\"challenge\":\"x\",\"origin\":\"http://localhost\"}")
                + "\",\"authenticatorData\":\"" + Junk.Base64Url(Junk.RandomBytes(r, 37)) + "\",\"signature\":\"AAAA\",\"userHandle\":\"" + Junk.Base64Url("no-such-user") + "\"}",
                "{\"attestationObject\":\"!!!\",\"clientDataJSON\":\"\"}", "{}", "null", "\"x\""])),
            ("clientExtensionResults", "{}")], out _);
        return Encoding.Latin1.GetString(bytes);
    }

    private RequestDraft AccountPages(Random r)
    {
        var (path, handler, fields) = r.Pick<(string, string, string[])>([("/Account/Totp", "", ["code"]), ("/Account/Totp", "Regenerate", []),
            ("/Account/Password", "", ["Input.CurrentPassword", "Input.NewPassword"]), ("/Error", "", []), ("/", "", []), ("/Account/Index", "", [])]);
        var post = r.Chance(0.5);
        var draft = new RequestDraft("account-pages", post ? "POST" : "GET", path);
        if (handler.Length > 0)
        {
            draft.Query.Add(Param.Of("handler", handler));
        }

        if (r.Chance(0.4))
        {
            draft.Query.Add(new Param(r.Pick(["ReturnUrl", "code", "statusCode"]), r.Pick(OddReturnUrls)));
        }

        if (r.Chance(0.8))
        {
            draft.SetHeader("Cookie", _t.Session);
        }

        if (post)
        {
            draft.WithForm([.. fields.Select(f => Param.Of(f, Junk.Text(r)))]);
            AddAntiforgery(draft, r, _t.SignedIn);
        }

        return draft;
    }

    // --- The admin API (RFC 9457 problems), with a valid platform-admin token ---

    private RequestDraft Admin(Random r)
    {
        var account = r.Next(10) switch
        {
            < 6 => _t.AccountId.ToString(),
            6 => Junk.Uuid(r).ToString(),
            _ => OddId(r),
        };
        var user = r.Next(10) < 6 ? _t.AccountUserId : OddId(r);
        var region = r.Next(10) < 5 ? _t.Region : r.Pick(["eu", "us", "zz-gone", OddId(r), "EU", "a", new string('r', 17)]);
        var client = r.Next(10) < 6 ? _t.ClientId : OddId(r);
        var route = r.Next(24);
        var (method, path, body) = route switch
        {
            0 => ("GET", "/admin/v1/accounts", null),
            1 => ("POST", "/admin/v1/accounts", AccountBody(r)),
            2 => ("GET", $"/admin/v1/accounts/{account}", null),
            3 => ("PATCH", $"/admin/v1/accounts/{account}", [("name", "\"renamed\"")]),
            4 => ("POST", $"/admin/v1/accounts/{account}/{r.Pick(["suspend", "activate"])}", null),
            5 => ("DELETE", $"/admin/v1/accounts/{OddId(r)}", null),
            6 => ("PUT", $"/admin/v1/accounts/{account}/settings", SettingsBody(r)),
            7 => (r.Pick(["PUT", "DELETE"]), $"/admin/v1/accounts/{account}/regions/{region}", null),
            8 => ("GET", $"/admin/v1/accounts/{account}/users", null),
            9 => ("POST", $"/admin/v1/accounts/{account}/users", UserBody(r, create: true)),
            10 => ("GET", $"/admin/v1/accounts/{account}/users/{user}", null),
            11 => ("PATCH", $"/admin/v1/accounts/{account}/users/{user}", UserBody(r, create: false)),
            12 => ("DELETE", $"/admin/v1/accounts/{account}/users/{OddId(r)}", null),
            13 => ("POST", $"/admin/v1/accounts/{account}/users/{user}/{r.Pick(["disable", "enable", "reset-mfa", "revoke-sessions", "junk"])}", null),
            14 => ("GET", "/admin/v1/regions", null),
            15 => ("PUT", $"/admin/v1/regions/{r.Pick(["fz-" + r.Next(5), region])}", [("displayName", "\"Fuzz region\"")]),
            16 => ("DELETE", $"/admin/v1/regions/{r.Pick(["fz-" + r.Next(5), OddId(r)])}", null),
            17 => ("GET", "/admin/v1/clients", null),
            18 => ("POST", "/admin/v1/clients", ClientBody(r)),
            19 => (r.Pick(["GET", "PUT", "DELETE"]), $"/admin/v1/clients/{client}", ClientBody(r)),
            20 => ("POST", $"/admin/v1/clients/{client}/rotate-secret", null),
            21 => ("GET", "/admin/v1/audit", null),
            22 => ("GET", r.Pick(["/admin/v1/outbox", "/admin/v1/keys", "/openapi/v1.json", "/admin/v1/", "/admin/v1/junk"]), null),
            _ => ("POST", "/admin/v1/keys/rotate", (List<(string, string)>?)[("algorithms", r.Pick(["[\"ES256\"]", "[\"HS256\"]", "[]", "\"RS256\"", "[1]"])),
                ("revokePrevious", r.Pick(["false", "\"true\"", "null", "1"]))]),
        };
        var draft = new RequestDraft("admin", method, path) { RefuseDotSegments = true };
        if (body is not null)
        {
            draft.BodyLimit = (method, AdminBodyLimit);
        }
        if (method is "GET" && r.Chance(0.6))
        {
            AdminQuery(draft, r);
        }

        if (method is "PATCH" or "PUT" or "DELETE" || (method == "POST" && r.Chance(0.2)))
        {
            if (r.Chance(0.85))
            {
                draft.SetHeader("If-Match", r.Pick(["*", "\"1\"", "\"2\"", "\"0\"", "W/\"1\"", "junk", "\"-1\"", "\"99999999999999999999\"", "\"1\", \"2\""]));
            }
        }

        if (body is not null && method is not ("GET" or "DELETE") || r.Chance(0.05))
        {
            draft.WithJson(Junk.JsonBody(r, body ?? [("name", "\"x\"")], out var how));
            draft.Steps.Add(how);
        }

        draft.SetHeader("Authorization", r.Next(20) switch
        {
            0 => "Bearer " + _t.ServiceToken,
            1 => "Bearer " + _t.SyncToken,
            2 => "Bearer " + Junk.Jwt(r, _t.AdminToken),
            _ => "Bearer " + _t.AdminToken,
        });
        draft.Protected.Add("Authorization");
        return draft;
    }

    private static void AdminQuery(RequestDraft draft, Random r)
    {
        string[] names = ["limit", "after", "email", "status", "from", "to", "actor", "subject", "type"];
        for (var i = r.Next(1, 4); i > 0; i--)
        {
            var name = r.Pick(names);
            draft.Query.Add(new Param(name, name switch
            {
                "limit" => r.Pick(["abc", "-1", "0", "1", "201", "99999999999", "1e3", "", "1.5", "%2B5", "0x10"]),
                "after" => r.Pick(["garbage", "", "!!!", Junk.Base64Url("not-a-guid"), Junk.Base64Url([0xC3, 0x28, 0xFF]), Junk.Base64Url(Junk.Uuid(r).ToString()),
                    Junk.Base64Url("99999999999999999999"), new string('A', 5000), "AAAA=", "%00"]),
                "from" or "to" => r.Pick(["yesterday", "2026-13-45", "9999-12-31T23:59:59Z", "0001-01-01", "", "1e9", "2026-01-01T00:00:00%2B99:00"]),
                "status" => r.Pick(["active", "disabled", "1", "ACTIVE", "junk", ""]),
                _ => Junk.Encoded(r),
            }));
        }
    }

    private static string OddId(Random r) => r.Pick(["abc", "..", ".", "%2e%2e", "%2E", "%2F", "a%2Fb", "00000000-0000-0000-0000-000000000000",
        "{" + Guid.Empty + "}", Junk.Uuid(r).ToString().ToUpperInvariant(), Junk.Uuid(r) + "x", Junk.Uuid(r).ToString("N"), new string('9', 400),
        "%00", "caf%C3%A9", "%C3%28", "%FF", " ", "%20", "-1", "null", "platform-admin-not", "%252e%252e", "~", "*"]);

    private static List<(string, string)> AccountBody(Random r) =>
        [("name", r.Pick(["\"Fuzz account\"", "\"\"", "\"   \"", "\"" + new string('n', 201) + "\""])),
         ("regions", r.Pick(["[]", "[\"eu\"]", "[\"zz-none\"]", "[\"eu\",\"eu\"]", "null"]))];

    private static List<(string, string)> SettingsBody(Random r) =>
        [("lockout", r.Pick(["{\"maxFailedAttempts\":5}", "{\"maxFailedAttempts\":-1}", "{}", "null", "[]"])),
         ("password", r.Pick(["{\"minLength\":8}", "{\"minLength\":1e999}", "\"x\""])),
         ("ipAllowList", r.Pick(["[\"192.0.2.0/24\"]", "[\"junk\"]", "[null]", "[\"::/0\",\"0.0.0.0/0\"]", "[\"1.2.3.4/99\"]"])),
         ("mfa", r.Pick(["{\"required\":true}", "{\"required\":\"yes\"}", "{}"]))];

    private static List<(string, string)> UserBody(Random r, bool create)
    {
        List<(string, string)> fields =
        [
            ("email", r.Pick(["\"fuzz-" + r.Next(1000) + "@example.test\"", "\"not-an-email\"", "\"\"", "\"ada@example.test\""])),
            ("displayName", r.Pick(["\"Fuzz\"", "\"\"", "null"])),
            ("role", r.Pick(["\"member\"", "\"admin\"", "\"owner\"", "\"junk\"", "\"\"", "null"])),
        ];
        if (create && r.Chance(0.5))
        {
            fields.Add(("password", r.Pick(["\"short\"", "\"Fuzz-password-1234567\"", "\"\""])));
        }

        return fields;
    }

    private static List<(string, string)> ClientBody(Random r) =>
        [("clientId", r.Pick(["\"fuzz-" + r.Next(50) + "\"", "\"\"", "\"platform-admin\"", "\"a b\""])),
         ("displayName", "\"Fuzz client\""),
         ("authenticationMethod", r.Pick(["\"client_secret_basic\"", "\"private_key_jwt\"", "\"none\"", "\"junk\"", "\"tls_client_auth\"", "\"self_signed_tls_client_auth\""])),
         ("tlsClientAuthSubjectDn", r.Pick(["null", "\"CN=fuzz\"", "\"\"", "\"CN=a,,=b\"", "\"\\u0000\"", "42"])),
         ("tlsClientAuthSanDns", r.Pick(["null", "\"svc.fuzz.test\"", "\"*.\"", "[\"a\"]"])),
         ("allowedIpRanges", r.Pick(["null", "[]", "[\"10.0.0.0/8\"]", "[\"::/0\", \"2001:db8::/129\"]", "[\"10.0.0.0/33\"]", "[null]", "\"10.0.0.0/8\"", "[\"1.2.3.4/-1\"]"])),
         ("tokenRateLimit", r.Pick(["null", "{\"permits\":10,\"window\":\"00:00:01\"}", "{\"permits\":0,\"window\":\"00:00:01\"}", "{\"permits\":-1}", "{\"window\":\"junk\"}", "[]", "{\"permits\":99999999999,\"window\":\"1.00:00:00\"}"])),
         ("grantTypes", r.Pick(["[\"client_credentials\"]", "[\"authorization_code\"]", "[\"junk\"]", "[]"])),
         ("redirectUris", r.Pick(["[\"https://fuzz.test/cb\"]", "[\"not a uri\"]", "[\"javascript:alert(1)\"]", "[]"])),
         ("scopes", r.Pick(["[\"api.read\"]", "[\"identity.admin\"]", "[\"junk\"]"])),
         ("accessTokenLifetime", r.Pick(["\"00:05:00\"", "\"junk\"", "\"-00:01:00\"", "\"10675199.02:48:05.4775807\""])),
         ("jwks", r.Pick(["null", "{\"keys\":[]}", "{\"keys\":[{\"kty\":\"EC\"}]}", "\"junk\"", "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}"]))];

    // --- Regional resync, health, OpenAPI, static files ---

    private RequestDraft Sync(Random r)
    {
        var draft = new RequestDraft("sync", "GET", $"/sync/v1/regions/{r.Pick(["eu", "us", "zz", OddId(r)])}/users");
        if (r.Chance(0.6))
        {
            draft.Query.Add(new Param(r.Pick(["after", "limit"]), r.Pick(["abc", "-1", "0", "1001", "99999999999", "", Junk.Encoded(r)])));
        }

        draft.SetHeader("Authorization", "Bearer " + r.Pick([_t.SyncToken, _t.SyncToken, _t.AdminToken, _t.ServiceToken, Junk.Jwt(r, _t.SyncToken)]));
        return draft;
    }

    private static RequestDraft HealthAndStatic(Random r) => new("health-and-static", r.Pick(["GET", "GET", "HEAD", "POST"]),
        r.Pick(["/health/live", "/health/ready", "/health", "/css/site.css", "/js/passkeys.js", "/favicon.ico", "/openapi/v1.json", "/openapi/junk.json",
            "/openapi/%2e%2e.json"]));

    // --- The defects of issue 15 (items 6-13): always sent, whatever the seed ---

    /// <summary>
    /// Requests that answered 500 (or did harm) when the issue was filed. Each is also a regression guard: they are
    /// sent first, in every run.
    /// </summary>
    public IReadOnlyList<CorpusEntry> KnownDefects()
    {
        var entries = new List<CorpusEntry>();
        RawRequest One(RequestDraft draft, string step)
        {
            draft.Steps.Add(step);
            return draft.Build();
        }

        // Item 8: a list-valued Content-Type on every /connect/* POST.
        foreach (var endpoint in new[] { "token", "introspect", "revoke", "userinfo", "authorize", "endsession" })
        {
            var draft = new RequestDraft(KnownDefectFamily, "POST", "/connect/" + endpoint).WithForm(Param.Of("grant_type", "client_credentials"), Param.Of("token", "x"));
            draft.SetHeader("Content-Type", "application/x-www-form-urlencoded, application/json");
            entries.Add(CorpusEntry.Of("item 8: list-valued Content-Type on /connect/" + endpoint, One(draft, "content-type:list")));
        }

        // Item 9: response_type=code code (and with two spaces) for a signed-in user.
        foreach (var responseType in new[] { "code code", "code  code" })
        {
            var draft = new RequestDraft(KnownDefectFamily, "GET", "/connect/authorize");
            draft.Query.AddRange([Param.Of("client_id", "web-eu"), Param.Of("response_type", responseType), Param.Of("redirect_uri", WebRedirect),
                Param.Of("scope", "openid"), Param.Of("state", "s"), Param.Of("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                Param.Of("code_challenge_method", "S256")]);
            draft.SetHeader("Cookie", _t.Session);
            entries.Add(CorpusEntry.Of($"item 9: response_type={responseType}", One(draft, "response_type")));
        }

        // Item 10: a local, non-ASCII return URL after the correct password.
        foreach (var returnUrl in new[] { "%2Fcaf%C3%A9", "/%E6%97%A5%E6%9C%AC?x=%C3%A9" })
        {
            var draft = new RequestDraft(KnownDefectFamily, "POST", "/Account/Login");
            draft.Query.Add(new Param("ReturnUrl", returnUrl));
            draft.WithForm(Param.Of("Input.Email", _t.SignInEmail), Param.Of("Input.Password", _t.SignInPassword),
                Param.Of("__RequestVerificationToken", _t.Anonymous.FormToken));
            draft.SetHeader("Cookie", _t.Anonymous.Cookie);
            entries.Add(CorpusEntry.Of("item 10: non-ASCII ReturnUrl after the correct password", One(draft, "return-url:" + returnUrl)));
        }

        // Item 11: "regions":[null].
        entries.Add(CorpusEntry.Of("item 11: regions [null]", One(AdminDraft("POST", "/admin/v1/accounts").WithJson("""{"name":"Null region","regions":[null]}"""), "json-nulls-in-arrays")));

        // Item 12: invalid UTF-8 inside a JSON string of the account settings.
        entries.Add(CorpusEntry.Of("item 12: invalid UTF-8 in settings JSON", One(AdminDraft("PUT", $"/admin/v1/accounts/{_t.AccountId}/settings", ifMatch: "*")
            .WithJson([.. "{\"lockout\":{\"maxFailedAttempts\":5},\"note\":\""u8, 0xC3, 0x28, 0xFF, .. "\"}"u8]), "json-invalid-utf8")));

        // Item 13: enabling a region on an account while the region is being deleted (a race: sent together, ten times;
        // on the code of the issue two to four of six lost it).
        for (var i = 0; i < 10; i++)
        {
            var code = $"race-{i}";
            entries.Add(new CorpusEntry($"item 13: enable region {code} while it is deleted",
            [
                [One(AdminDraft("PUT", $"/admin/v1/regions/{code}").WithJson("""{"displayName":"Race"}"""), "create-region")],
                [One(AdminDraft("DELETE", $"/admin/v1/regions/{code}"), "delete-region"),
                 One(AdminDraft("PUT", $"/admin/v1/accounts/{_t.AccountId}/regions/{code}", ifMatch: "*"), "enable-region")],
            ]));
        }

        // Item 6: dot segments must not reach the parent route (DELETE …/users/.. deleted the account).
        foreach (var dots in new[] { "..", "%2e%2e", ".", "%2E" })
        {
            var draft = AdminDraft("DELETE", $"/admin/v1/accounts/{NoSuchAccount}/users/{dots}", ifMatch: "*");
            if (dots == ".")
            {
                // The refusal must not depend on a problem writer for the Accept header (a first fix answered 500 here).
                draft.SetHeader("Accept", "text/html");
            }
            entries.Add(CorpusEntry.Of($"item 6: dot segment '{dots}' in an admin path", One(draft, "path:dots")));
        }

        // Item 7: the 64 KiB admin body limit holds for a chunked body (a valid document padded with whitespace).
        var padded = AdminDraft("PUT", "/admin/v1/regions/fz-padded");
        padded.BodyLimit = ("PUT", AdminBodyLimit);
        padded.WithJson("{\"displayName\":\"Padded\"" + new string(' ', 200_000) + "}");
        padded.Framing = Framing.Chunked;
        entries.Add(CorpusEntry.Of("item 7: chunked admin body over 64 KiB", One(padded, "framing:chunked:200000")));
        entries.AddRange(FoundByThisCorpus());
        return entries;
    }

    /// <summary>500s this corpus found beyond the issue's list; kept as regression guards.</summary>
    private IEnumerable<CorpusEntry> FoundByThisCorpus()
    {
        // A charset the runtime refuses to decode (UTF-7) made every form reader throw NotSupportedException.
        foreach (var (path, form) in new[] { ("/connect/token", "grant_type=client_credentials"), ("/Account/Login", "Input.Email=a%40b.test&Input.Password=x") })
        {
            var draft = new RequestDraft(KnownDefectFamily, "POST", path).WithForm(new Param(form, null));
            draft.SetHeader("Content-Type", "application/x-www-form-urlencoded; charset=utf-7");
            draft.Steps.Add("content-type:utf-7");
            yield return CorpusEntry.Of($"found: charset=utf-7 on {path}", draft.Build());
        }

        // A media type that only starts like a form (HasFormContentType says no, the form reader is asked anyway).
        var suffixed = new RequestDraft(KnownDefectFamily, "POST", "/connect/token").WithForm(Param.Of("grant_type", "client_credentials"));
        suffixed.SetHeader("Content-Type", "application/x-www-form-urlencoded-junk");
        suffixed.Steps.Add("content-type:suffixed");
        yield return CorpusEntry.Of("found: Content-Type application/x-www-form-urlencoded-junk on /connect/token", suffixed.Build());

        // A Host whose port is not a port (seed 42): OpenIddict could not build the request's address and matched no
        // endpoint, so the authorize page and userinfo answered 500.
        var authorize = new RequestDraft(KnownDefectFamily, "GET", "/connect/authorize");
        authorize.Query.AddRange([Param.Of("client_id", "web-eu"), Param.Of("response_type", "code"), Param.Of("redirect_uri", WebRedirect),
            Param.Of("scope", "openid"), Param.Of("state", "s"), Param.Of("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            Param.Of("code_challenge_method", "S256")]);
        var userinfo = new RequestDraft(KnownDefectFamily, "POST", "/connect/userinfo").WithForm(Param.Of("access_token", "x"));
        foreach (var (draft, host) in new[] { (authorize, "localhost:99999"), (userinfo, "localhost:99999"), (userinfo, "localhost:0") })
        {
            draft.SetHeader("Host", host);
            draft.Steps.Add("host:" + host);
            yield return CorpusEntry.Of($"found: Host {host} on {draft.Path}", draft.Build());
        }

        // A form field whose name opens a '[' it never closes (seed 42): MVC's jQuery-style key normalizer threw
        // ArgumentException while binding any page's form.
        var login = new RequestDraft(KnownDefectFamily, "POST", "/Account/Login");
        login.WithForm(Param.Of("Input.Email", "a@b.test"), Param.Of("Input.Password", "x"), Param.Of("scope[x", "openid"),
            Param.Of("__RequestVerificationToken", _t.Anonymous.FormToken));
        login.SetHeader("Cookie", _t.Anonymous.Cookie);
        login.Steps.Add("form-key:unclosed-bracket");
        yield return CorpusEntry.Of("found: a form key with an unclosed '[' on /Account/Login", login.Build());

        // A null among the algorithms of a key rotation passed the check for unknown algorithms, then threw in CreateKey.
        var rotate = AdminDraft("POST", "/admin/v1/keys/rotate").WithJson("""{"algorithms":[null],"revokePrevious":false}""");
        rotate.Steps.Add("json-nulls-in-arrays");
        yield return CorpusEntry.Of("found: algorithms [null] on key rotation", rotate.Build());
    }

    private RequestDraft AdminDraft(string method, string path, string? ifMatch = null)
    {
        var draft = new RequestDraft(KnownDefectFamily, method, path) { RefuseDotSegments = true }.SetHeader("Authorization", "Bearer " + _t.AdminToken);
        return ifMatch is null ? draft : draft.SetHeader("If-Match", ifMatch);
    }
}
