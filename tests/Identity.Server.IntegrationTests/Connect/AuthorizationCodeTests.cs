using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>Authorization code + PKCE, SSO session, consent, refresh and logout, over HTTP.</summary>
public sealed class AuthorizationCodeTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string EuRedirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";
    private const string UsRedirect = ServerFixture<SqliteTestDatabase>.UsApp + "/signin-oidc";

    private BrowserSession NewBrowser() => new(fixture.Server);

    private async Task<(Uri Callback, string Verifier, string Nonce, string State)> SignInAsync(BrowserSession browser,
        string clientId = "web-eu", string redirect = EuRedirect, params (string, string)[] extra)
    {
        var (verifier, challenge) = BrowserSession.Pkce();
        var url = BrowserSession.AuthorizeUrl(clientId, redirect, challenge, extra);
        var query = BrowserSession.Query(new Uri("http://localhost" + url));
        var callback = await browser.AuthorizeAsync(url, ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);
        return (callback, verifier, query["nonce"], query["state"]);
    }

    private Task<HttpResponseMessage> RedeemAsync(string code, string verifier, string clientId = "web-eu", string redirect = EuRedirect) =>
        fixture.Client.RedeemCodeAsync(code, verifier, redirect, (clientId, fixture.WebSecret));

    private Task<HttpResponseMessage> RefreshAsync(string refreshToken) =>
        fixture.Client.PostFormAsync("/connect/token", [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)],
            ("web-eu", fixture.WebSecret));

    [Fact]
    public async Task CodeFlow_WithPkce_IssuesIdTokenThatAStandardValidatorAccepts()
    {
        var (callback, verifier, nonce, state) = await SignInAsync(NewBrowser());
        var query = BrowserSession.Query(callback);
        Assert.Equal(state, query["state"]);
        Assert.Equal(ServerFixture<SqliteTestDatabase>.Issuer, query["iss"]); // RFC 9207

        var tokens = await ResponseAssert.StatusAsync(await RedeemAsync(query["code"], verifier), HttpStatusCode.OK);
        var idToken = tokens.GetProperty("id_token").GetString()!;
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        Assert.False(string.IsNullOrEmpty(tokens.GetProperty("refresh_token").GetString()));

        var jwks = new JsonWebKeySet(await fixture.Client.GetStringAsync("/.well-known/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidIssuer = ServerFixture<SqliteTestDatabase>.Issuer,
            ValidAudience = "web-eu",
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidateLifetime = true,
        });
        Assert.True(result.IsValid, result.Exception?.Message);

        var jwt = (JsonWebToken)result.SecurityToken;
        Assert.Equal(fixture.UserId, jwt.Subject);
        Assert.NotEqual(ServerFixture<SqliteTestDatabase>.UserEmail, jwt.Subject);
        Assert.Equal(nonce, jwt.GetClaim("nonce").Value);
        Assert.True(jwt.ValidTo > DateTime.UtcNow);
        Assert.False(string.IsNullOrEmpty(jwt.GetClaim("sid").Value));
        Assert.InRange(long.Parse(jwt.GetClaim("auth_time").Value, System.Globalization.CultureInfo.InvariantCulture),
            DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.Equal(ServerFixture<SqliteTestDatabase>.UserEmail, jwt.GetClaim("email").Value);

        // amr is a JSON array (OpenID Connect Core §2).
        var payload = System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.Decode(idToken.Split('.')[1])).RootElement;
        Assert.Equal(System.Text.Json.JsonValueKind.Array, payload.GetProperty("amr").ValueKind);
        Assert.Equal(["pwd"], payload.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));

        // at_hash: left half of SHA-256 of the access token (Core §3.1.3.6).
        var expected = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))[..16]);
        Assert.Equal(expected, jwt.GetClaim("at_hash").Value);
    }

    [Fact]
    public async Task Userinfo_WithEmailScope_ReturnsEmailClaims()
    {
        var (callback, verifier, _, _) = await SignInAsync(NewBrowser());
        var tokens = await (await RedeemAsync(BrowserSession.Query(callback)["code"], verifier)).JsonAsync();

        using var request = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        request.Headers.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        var claims = await ResponseAssert.StatusAsync(await fixture.Client.SendAsync(request), HttpStatusCode.OK);

        Assert.Equal(fixture.UserId, claims.GetProperty("sub").GetString());
        Assert.Equal(ServerFixture<SqliteTestDatabase>.UserEmail, claims.GetProperty("email").GetString());
        Assert.Equal("Ada Lovelace", claims.GetProperty("name").GetString());
    }

    /// <summary>A person of a new customer account signs in at web-eu: the account's id, the tokens and the userinfo response.</summary>
    private async Task<(Guid Account, JsonElement Tokens, JsonElement Userinfo)> SignInAsAccountUserAsync(string accountName, string role)
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", $"{{\"name\":\"{accountName}\"}}"),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var email = $"member-{Guid.NewGuid():n}@example.test";
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $"{{\"email\":\"{email}\",\"role\":\"{role}\",\"password\":\"{fixture.UserPassword}\"}}"), HttpStatusCode.Created);
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await NewBrowser().AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge), email, fixture.UserPassword);
        var tokens = await ResponseAssert.StatusAsync(await RedeemAsync(BrowserSession.Query(callback)["code"], verifier), HttpStatusCode.OK);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        request.Headers.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        var userinfo = await ResponseAssert.StatusAsync(await fixture.Client.SendAsync(request), HttpStatusCode.OK);
        return (account, tokens, userinfo);
    }

    [Fact]
    public async Task Userinfo_UserOfAnAccount_ReturnsAccountAndRole()
    {
        var (account, _, claims) = await SignInAsAccountUserAsync("Contoso", "admin");

        Assert.Equal(account, claims.GetProperty("account").GetProperty("id").GetGuid());
        Assert.Equal("Contoso", claims.GetProperty("account").GetProperty("name").GetString());
        Assert.Equal("admin", claims.GetProperty("account").GetProperty("role").GetString());
    }

    // OpenID Connect Discovery 1.0 §3: claims_supported names the claims the provider can supply, acr_values_supported
    // the authentication context classes it issues. Every claim of a real ID token and userinfo response is listed,
    // except OpenIddict's own bookkeeping (oi_*), which is no claim offered to clients.
    [Fact]
    public async Task Discovery_ClaimsAndAcrValues_ListEverythingTheTokensAndUserinfoCarry()
    {
        var (_, tokens, userinfo) = await SignInAsAccountUserAsync("Fabrikam", "member");
        var idToken = JsonDocument.Parse(Base64UrlEncoder.Decode(tokens.GetProperty("id_token").GetString()!.Split('.')[1])).RootElement;

        var discovery = await (await fixture.Client.GetAsync("/.well-known/openid-configuration")).JsonAsync();

        var supported = discovery.GetProperty("claims_supported").EnumerateArray().Select(e => e.GetString()).ToHashSet();
        foreach (var claim in idToken.EnumerateObject().Concat(userinfo.EnumerateObject()).Select(p => p.Name)
            .Where(name => !name.StartsWith("oi_", StringComparison.Ordinal)))
        {
            Assert.True(supported.Contains(claim), $"claims_supported lacks '{claim}'");
        }

        var acrValues = discovery.GetProperty("acr_values_supported").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(["urn:identity:acr:mfa", "urn:identity:acr:pwd"], acrValues.Order(StringComparer.Ordinal));
        Assert.Contains(idToken.GetProperty("acr").GetString(), acrValues);
    }

    [Fact]
    public async Task LoginHint_PrefillsTheEmail()
    {
        var (_, challenge) = BrowserSession.Pkce();
        var browser = NewBrowser();
        var toLogin = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge, ("login_hint", "hint@example.test")));

        var page = await browser.GetAsync(BrowserSession.Location(toLogin).PathAndQuery);

        Assert.Contains("value=\"hint@example.test\"", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromptConsent_ThirdPartyWithRememberedConsent_AsksAgain()
    {
        var browser = NewBrowser();
        await SignInAsync(browser);
        var partnerRedirect = ServerFixture<SqliteTestDatabase>.PartnerApp + "/signin-oidc";
        var first = await browser.GetAsync(BrowserSession.AuthorizeUrl("partner", partnerRedirect, BrowserSession.Pkce().Challenge));
        await browser.SubmitAsync("/connect/authorize", await first.Content.ReadAsStringAsync(), new Dictionary<string, string>(), button: "allow");

        var again = await browser.GetAsync(BrowserSession.AuthorizeUrl("partner", partnerRedirect, BrowserSession.Pkce().Challenge, ("prompt", "consent")));
        var none = await browser.GetAsync(BrowserSession.AuthorizeUrl("partner", partnerRedirect, BrowserSession.Pkce().Challenge, ("prompt", "none")));

        Assert.Contains("Partner Analytics", await ResponseAssert.HtmlAsync(again, HttpStatusCode.OK), StringComparison.Ordinal);
        Assert.True(BrowserSession.Query(BrowserSession.Location(none)).ContainsKey("code")); // remembered: no UI needed
    }

    [Fact]
    public async Task PromptNone_ThirdPartyWithoutConsent_ConsentRequired()
    {
        var email = $"fresh-{Guid.NewGuid():n}@example.test"; // a person who never consented to the partner
        await fixture.CreateUserAsync(email, fixture.UserPassword);
        var browser = NewBrowser();
        await browser.SignInAsync("/Account/Login", email, fixture.UserPassword);
        var partnerRedirect = ServerFixture<SqliteTestDatabase>.PartnerApp + "/signin-oidc";

        var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("partner", partnerRedirect, BrowserSession.Pkce().Challenge, ("prompt", "none")));

        Assert.Equal("consent_required", BrowserSession.Query(BrowserSession.Location(response))["error"]);
    }

    [Fact]
    public async Task Userinfo_WithoutToken_Unauthorized()
    {
        var response = await fixture.Client.GetAsync("/connect/userinfo");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task SecondClient_WithSsoSession_GetsCodeWithoutLogin()
    {
        var browser = NewBrowser();
        await SignInAsync(browser);

        var (_, challenge) = BrowserSession.Pkce();
        var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-us", UsRedirect, challenge));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = BrowserSession.Location(response);
        Assert.StartsWith(UsRedirect, location.AbsoluteUri, StringComparison.Ordinal);
        Assert.True(BrowserSession.Query(location).ContainsKey("code"));
    }

    [Fact]
    public async Task PromptLogin_WithSsoSession_ShowsLoginAgain()
    {
        var browser = NewBrowser();
        await SignInAsync(browser);

        var (_, challenge) = BrowserSession.Pkce();
        var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-us", UsRedirect, challenge, ("prompt", "login")));

        Assert.StartsWith("/Account/Login", BrowserSession.Location(response).OriginalString.Replace("http://localhost", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxAgeZero_WithSsoSession_ShowsLoginAgain()
    {
        var browser = NewBrowser();
        await SignInAsync(browser);
        await Task.Delay(1100);

        var (_, challenge) = BrowserSession.Pkce();
        var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-us", UsRedirect, challenge, ("max_age", "0")));

        Assert.Contains("/Account/Login", BrowserSession.Location(response).OriginalString, StringComparison.Ordinal);
    }

    // RFC 6749 §3.1.1: response_type lists each response type once; a repeated one is a malformed request, answered at
    // the client's registered redirect URI (§4.1.2.1) like any other error once the client and the URI are known.
    [Theory]
    [InlineData("code code", true)]
    [InlineData("code  code", true)]
    [InlineData("code code", false)]
    public async Task RepeatedResponseType_RedirectsInvalidRequestToTheClient(string responseType, bool signedIn)
    {
        var browser = NewBrowser();
        if (signedIn)
        {
            await SignInAsync(browser);
        }

        var (_, challenge) = BrowserSession.Pkce();
        var url = BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge, ("response_type", responseType), ("state", "st-repeated"));

        var response = await browser.GetAsync(url);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = BrowserSession.Location(response);
        Assert.StartsWith(EuRedirect + "?", location.AbsoluteUri, StringComparison.Ordinal);
        var query = BrowserSession.Query(location);
        Assert.Equal("invalid_request", query["error"]);
        Assert.Equal("st-repeated", query["state"]);
        Assert.Equal(ServerFixture<SqliteTestDatabase>.Issuer, query["iss"]); // RFC 9207
        Assert.False(query.ContainsKey("code"));
    }

    // OpenID Connect Core §3.1.2.1: max_age=0 and prompt=login ask for a fresh sign-in; the sign-in made for this very
    // request satisfies them, so the person comes back to the client with a code (no login loop), and the ID token's
    // auth_time is that sign-in's.
    [Theory]
    [InlineData("max_age", "0", true)]
    [InlineData("max_age", "0", false)]
    [InlineData("prompt", "login", true)]
    [InlineData("max_age", "1", true)]
    public async Task FreshSignInRequested_SignsInOnceAndIssuesTokens(string parameter, string value, bool withOldSession)
    {
        var browser = NewBrowser();
        if (withOldSession)
        {
            await SignInAsync(browser);
            await Task.Delay(2100); // the session is now older than max_age, whole seconds
        }

        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var (verifier, challenge) = BrowserSession.Pkce();
        var url = BrowserSession.AuthorizeUrl("web-us", UsRedirect, challenge, (parameter, value));

        var first = await browser.GetAsync(url);
        Assert.Contains("/Account/Login", BrowserSession.Location(first).OriginalString, StringComparison.Ordinal);
        var callback = await browser.AuthorizeAsync(url, ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.StartsWith(UsRedirect, callback.AbsoluteUri, StringComparison.Ordinal);
        var tokens = await ResponseAssert.StatusAsync(await RedeemAsync(BrowserSession.Query(callback)["code"], verifier, "web-us", UsRedirect),
            HttpStatusCode.OK);
        var idToken = new JsonWebToken(tokens.GetProperty("id_token").GetString());
        var authTime = long.Parse(idToken.GetClaim("auth_time").Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(authTime, before, DateTimeOffset.UtcNow.ToUnixTimeSeconds());

        // The fresh sign-in is this request's only: the next request asking for it again signs in again.
        var again = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-us", UsRedirect, BrowserSession.Pkce().Challenge, (parameter, value)));
        if (parameter == "prompt" || value == "0")
        {
            Assert.Contains("/Account/Login", BrowserSession.Location(again).OriginalString, StringComparison.Ordinal);
        }
    }

    // The request a person is sent back to after signing in is no pass: taken to a browser whose session signed in
    // before it was made (a stolen session cookie, say), it still asks for a sign-in.
    [Fact]
    public async Task FreshSignInRequested_ReturnUrlUsedWithAnOlderSession_AsksToSignInAgain()
    {
        var victim = NewBrowser();
        await SignInAsync(victim);
        await Task.Delay(1100);
        var toLogin = await NewBrowser().GetAsync(BrowserSession.AuthorizeUrl("web-us", UsRedirect, BrowserSession.Pkce().Challenge, ("max_age", "0")));
        var returnUrl = BrowserSession.Query(new Uri(new Uri("http://localhost"), BrowserSession.Location(toLogin)))["ReturnUrl"];
        Assert.Contains("identity_fresh_signin=", returnUrl, StringComparison.Ordinal);

        var replayed = await victim.GetAsync(returnUrl);

        Assert.Contains("/Account/Login", BrowserSession.Location(replayed).OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromptNone_WithoutSession_RedirectsLoginRequired()
    {
        var (_, challenge) = BrowserSession.Pkce();
        var response = await NewBrowser().GetAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge, ("prompt", "none")));

        var location = BrowserSession.Location(response);
        Assert.StartsWith(EuRedirect, location.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("login_required", BrowserSession.Query(location)["error"]);
    }

    // PKCE is required globally (RFC 9700 §2.1.1), so OpenIddict checks it before the redirect URI has been matched
    // against the client: the error is shown at Identity rather than sent to a URI not yet known to be the client's.
    [Theory]
    [InlineData(null, null)]
    [InlineData("a-plain-verifier-that-is-long-enough-1234567890", "plain")]
    public async Task MissingOrWeakPkce_RefusedAtIdentity(string? challenge, string? method)
    {
        var extra = challenge is null ? [] : new[] { ("code_challenge", challenge), ("code_challenge_method", method!) };
        var response = await NewBrowser().GetAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge: null, extra));

        var html = await ResponseAssert.HtmlAsync(response, HttpStatusCode.BadRequest);
        Assert.Null(response.Headers.Location);
        Assert.Contains("invalid_request", html, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("web-eu", "https://evil.example/signin-oidc")]
    [InlineData("web-eu", EuRedirect + "/extra")]
    [InlineData("web-eu", "https://EU.app.test/signin-oidc?x=1")]
    [InlineData("no-such-client", EuRedirect)]
    public async Task UnregisteredRedirectUriOrClient_ShowsErrorAtIdentity_NeverRedirects(string clientId, string redirect)
    {
        var (_, challenge) = BrowserSession.Pkce();
        var response = await NewBrowser().GetAsync(BrowserSession.AuthorizeUrl(clientId, redirect, challenge));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
        Assert.Contains("request was refused", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongVerifier_InvalidGrant()
    {
        var (callback, _, _, _) = await SignInAsync(NewBrowser());

        var response = await RedeemAsync(BrowserSession.Query(callback)["code"], BrowserSession.Pkce().Verifier);

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task CodeReplay_Refused_AndTokensFromTheCodeRevoked()
    {
        var (callback, verifier, _, _) = await SignInAsync(NewBrowser());
        var code = BrowserSession.Query(callback)["code"];
        var first = await ResponseAssert.StatusAsync(await RedeemAsync(code, verifier), HttpStatusCode.OK);

        var replay = await ResponseAssert.StatusAsync(await RedeemAsync(code, verifier), HttpStatusCode.BadRequest);

        Assert.Equal("invalid_grant", replay.GetProperty("error").GetString());
        var refreshed = await ResponseAssert.StatusAsync(await RefreshAsync(first.GetProperty("refresh_token").GetString()!), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", refreshed.GetProperty("error").GetString());
        var introspection = await (await fixture.Client.PostFormAsync("/connect/introspect",
            [new("token", first.GetProperty("access_token").GetString()!)], ("web-eu", fixture.WebSecret))).JsonAsync();
        Assert.False(introspection.GetProperty("active").GetBoolean());
        var userinfo = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        userinfo.Headers.Authorization = new("Bearer", first.GetProperty("access_token").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client.SendAsync(userinfo)).StatusCode);
    }

    // RFC 9700 §4.14.2: with no leeway configured (the default), a rotated refresh token presented again is reuse: refused,
    // and the whole family revoked, the branch the legitimate client holds included — two branches can never live on.
    [Fact]
    public async Task RefreshTokenReuse_ByDefault_RefusedAndEveryBranchRevoked()
    {
        var host = fixture.StartServer();
        var client = host.Start();
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(host).AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge),
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);
        var original = (await (await client.RedeemCodeAsync(callback, verifier, EuRedirect, ("web-eu", fixture.WebSecret))).JsonAsync())
            .GetProperty("refresh_token").GetString()!;
        Task<HttpResponseMessage> Refresh(string token) => client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", token)], ("web-eu", fixture.WebSecret));
        var rotated = (await ResponseAssert.StatusAsync(await Refresh(original), HttpStatusCode.OK)).GetProperty("refresh_token").GetString()!;

        var reuse = await ResponseAssert.StatusAsync(await Refresh(original), HttpStatusCode.BadRequest);
        var otherBranch = await ResponseAssert.StatusAsync(await Refresh(rotated), HttpStatusCode.BadRequest);

        Assert.Equal("invalid_grant", reuse.GetProperty("error").GetString());
        Assert.Equal("invalid_grant", otherBranch.GetProperty("error").GetString());
    }

    // A confidential client that asked for a reuse leeway (a retry after a lost response) gets new tokens within it,
    // and reuse detection, family revoked, after it.
    [Fact]
    public async Task RefreshTokenReuse_ConfidentialClientWithLeeway_AcceptedWithinItRefusedAfter()
    {
        const string Redirect = "https://grace.app.test/signin-oidc";
        var host = fixture.StartServer(settings =>
        {
            settings["Oidc:Clients:10:ClientId"] = "web-grace";
            settings["Oidc:Clients:10:GrantTypes:0"] = "authorization_code";
            settings["Oidc:Clients:10:GrantTypes:1"] = "refresh_token";
            settings["Oidc:Clients:10:Scopes:0"] = "openid";
            settings["Oidc:Clients:10:Scopes:1"] = "offline_access";
            settings["Oidc:Clients:10:RedirectUris:0"] = Redirect;
            settings["Oidc:Clients:10:SecretFile"] = fixture.SecretFile("web");
            settings["Oidc:Clients:10:RefreshTokenReuseLeeway"] = "00:00:04";
        });
        var client = host.Start();
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(host).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-grace", Redirect, challenge, ("scope", "openid offline_access")),
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);
        var original = (await ResponseAssert.StatusAsync(await client.RedeemCodeAsync(callback, verifier, Redirect, ("web-grace", fixture.WebSecret)),
            HttpStatusCode.OK)).GetProperty("refresh_token").GetString()!;
        Task<HttpResponseMessage> Refresh(string token) => client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", token)], ("web-grace", fixture.WebSecret));
        var rotated = (await ResponseAssert.StatusAsync(await Refresh(original), HttpStatusCode.OK)).GetProperty("refresh_token").GetString()!;

        var retry = await ResponseAssert.StatusAsync(await Refresh(original), HttpStatusCode.OK);
        await Task.Delay(TimeSpan.FromSeconds(4.5));
        var late = await ResponseAssert.StatusAsync(await Refresh(original), HttpStatusCode.BadRequest);

        Assert.NotEqual(rotated, retry.GetProperty("refresh_token").GetString());
        Assert.Equal("invalid_grant", late.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await Refresh(rotated)).StatusCode); // the family is revoked
    }

    // A public client's refresh token can be replayed by anyone who copies it: no leeway for one (RFC 9700 §4.14.2).
    [Fact]
    public async Task RefreshTokenReuseLeeway_OnPublicClient_RefusesToStart()
    {
        var host = fixture.StartServer(settings =>
        {
            settings["Oidc:Clients:10:ClientId"] = "spa-public";
            settings["Oidc:Clients:10:GrantTypes:0"] = "authorization_code";
            settings["Oidc:Clients:10:GrantTypes:1"] = "refresh_token";
            settings["Oidc:Clients:10:Scopes:0"] = "openid";
            settings["Oidc:Clients:10:RedirectUris:0"] = "https://spa.app.test/callback";
            settings["Oidc:Clients:10:RefreshTokenReuseLeeway"] = "00:00:05";
        });

        var error = Record.Exception(() => host.Start());

        Assert.NotNull(error);
        Assert.Contains("Oidc:Clients:10:RefreshTokenReuseLeeway", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RefreshToken_Rotates_AndReuseRevokesTheChain()
    {
        var (callback, verifier, _, _) = await SignInAsync(NewBrowser());
        var tokens = await (await RedeemAsync(BrowserSession.Query(callback)["code"], verifier)).JsonAsync();
        var original = tokens.GetProperty("refresh_token").GetString()!;

        var rotated = await ResponseAssert.StatusAsync(await RefreshAsync(original), HttpStatusCode.OK);
        var next = rotated.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(original, next);

        var reuse = await ResponseAssert.StatusAsync(await RefreshAsync(original), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", reuse.GetProperty("error").GetString());
        var afterTheft = await ResponseAssert.StatusAsync(await RefreshAsync(next), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", afterTheft.GetProperty("error").GetString());
        foreach (var accessToken in new[] { tokens, rotated }.Select(t => t.GetProperty("access_token").GetString()!))
        {
            var introspection = await (await fixture.Client.PostFormAsync("/connect/introspect", [new("token", accessToken)],
                ("web-eu", fixture.WebSecret))).JsonAsync();
            Assert.False(introspection.GetProperty("active").GetBoolean());
        }
    }

    [Fact]
    public async Task ThirdPartyClient_ConsentShownOnce_FirstPartyNever()
    {
        var browser = NewBrowser();
        await SignInAsync(browser); // first-party: straight to a code, no consent page

        var partnerRedirect = ServerFixture<SqliteTestDatabase>.PartnerApp + "/signin-oidc";
        var (_, challenge) = BrowserSession.Pkce();
        var url = BrowserSession.AuthorizeUrl("partner", partnerRedirect, challenge);
        var consent = await browser.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, consent.StatusCode);
        var html = await consent.Content.ReadAsStringAsync();
        Assert.Contains("Partner Analytics", html, StringComparison.Ordinal);

        var allowed = await browser.SubmitAsync("/connect/authorize", html, new Dictionary<string, string>(), button: "allow");
        Assert.StartsWith(partnerRedirect, BrowserSession.Location(allowed).AbsoluteUri, StringComparison.Ordinal);

        var again = await browser.GetAsync(BrowserSession.AuthorizeUrl("partner", partnerRedirect, BrowserSession.Pkce().Challenge));
        Assert.Equal(HttpStatusCode.Redirect, again.StatusCode);
        Assert.True(BrowserSession.Query(BrowserSession.Location(again)).ContainsKey("code"));
    }

    [Fact]
    public async Task Logout_WithIdTokenHint_EndsSsoAndReturnsToRegisteredUri()
    {
        var browser = NewBrowser();
        var (callback, verifier, _, _) = await SignInAsync(browser);
        var idToken = (await (await RedeemAsync(BrowserSession.Query(callback)["code"], verifier)).JsonAsync()).GetProperty("id_token").GetString()!;
        var postLogout = ServerFixture<SqliteTestDatabase>.EuApp + "/signout-callback-oidc";

        var confirm = await browser.GetAsync($"/connect/endsession?id_token_hint={idToken}&post_logout_redirect_uri={Uri.EscapeDataString(postLogout)}&state=bye");
        var html = await ResponseAssert.HtmlAsync(confirm, HttpStatusCode.OK);
        var done = await browser.SubmitAsync("/connect/endsession", html, new Dictionary<string, string>());

        var location = BrowserSession.Location(done);
        Assert.StartsWith(postLogout, location.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("bye", BrowserSession.Query(location)["state"]);
        var (_, challenge) = BrowserSession.Pkce();
        var next = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-us", UsRedirect, challenge));
        Assert.Contains("/Account/Login", BrowserSession.Location(next).OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logout_UnregisteredPostLogoutUri_NotRedirected()
    {
        var response = await NewBrowser().GetAsync($"/connect/endsession?post_logout_redirect_uri={Uri.EscapeDataString("https://evil.example/")}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Null(response.Headers.Location);
    }

    [Fact]
    public async Task FormPostResponseMode_AutoSubmitScriptIsAllowedByCsp()
    {
        var browser = NewBrowser();
        await SignInAsync(browser);

        var (_, challenge) = BrowserSession.Pkce();
        var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", EuRedirect, challenge, ("response_mode", "form_post")));

        var html = await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK);
        Assert.Contains($"action=\"{EuRedirect}\"", html, StringComparison.Ordinal);
        Assert.Contains("name=\"code\"", html, StringComparison.Ordinal);
        var script = System.Text.RegularExpressions.Regex.Match(html, "<script>(.*?)</script>").Groups[1].Value;
        var hash = "'sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(script))) + "'";
        Assert.Contains(hash, response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }
}
