using System.Text.Json.Nodes;
using Identity.InteropTests.Infrastructure;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.InteropTests;

/// <summary>
/// openid-client 6 (an OpenID-certified relying-party library, run with node) against Identity on a real socket:
/// every protocol check is the library's, the browser between its steps is a <see cref="UserAgent"/>.
/// </summary>
public abstract class OpenIdClientTests<TDatabase>(InteropFixture<TDatabase> fixture) where TDatabase : TestDatabase, new()
{
    private const string Scope = "openid profile email offline_access api.read";

    private NodeRelyingParty PublicClient =>
        fixture.OpenIdClient(new RelyingPartyClient(InteropFixture<TDatabase>.PublicClient, "none"));

    private CodeFlowClient Spa => new(PublicClient, InteropFixture<TDatabase>.PublicRedirectUri);

    private CodeFlowClient Web => new(
        fixture.OpenIdClient(new RelyingPartyClient(InteropFixture<TDatabase>.WebClient, "client_secret_basic", fixture.WebSecret)),
        InteropFixture<TDatabase>.WebRedirectUri);

    [Fact]
    public async Task Discovery_WithConfiguredIssuer_PublishesThatExactIssuer()
    {
        var result = (await PublicClient.RunAsync("discovery")).AssertOk();

        // Discovery §4.3 / RFC 8414 §3.3: identical, compared as strings (as go-oidc does), not as parsed URLs.
        Assert.Equal(fixture.Issuer, result.Text("metadata", "issuer"));
        Assert.Equal(fixture.Issuer + "connect/token", result.Text("metadata", "token_endpoint"));
        Assert.Contains("S256", Strings(result.Node("metadata", "code_challenge_methods_supported")));
        Assert.Superset(
            new HashSet<string> { "client_secret_basic", "client_secret_post", "private_key_jwt" },
            Strings(result.Node("metadata", "token_endpoint_auth_methods_supported")).ToHashSet());
    }

    [Theory]
    [InlineData("client_secret_basic")]
    [InlineData("client_secret_post")]
    public async Task ClientCredentials_WithClientSecret_IssuesActiveToken(string method)
    {
        var service = fixture.OpenIdClient(new RelyingPartyClient(InteropFixture<TDatabase>.ServiceWithSecret, method, fixture.ServiceSecret));

        var result = (await service.RunAsync("client_credentials", new JsonObject { ["scope"] = "api.read" })).AssertOk();

        AssertServiceToken(result, InteropFixture<TDatabase>.ServiceWithSecret);
    }

    [Fact]
    public async Task ClientCredentials_WithPrivateKeyJwtOfTheLibrary_IssuesActiveToken()
    {
        // openid-client's assertion has no typ header and aud = the issuer (RFC 7523 §3; issue 15, item 15).
        var service = fixture.OpenIdClient(new RelyingPartyClient(
            InteropFixture<TDatabase>.ServiceWithKey, "private_key_jwt", PrivateJwk: fixture.ServicePrivateJwk()));

        var result = (await service.RunAsync("client_credentials", new JsonObject { ["scope"] = "api.read" })).AssertOk();

        AssertServiceToken(result, InteropFixture<TDatabase>.ServiceWithKey);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AuthorizationCode_WithPkce_SignsTheUserIn(bool confidential)
    {
        using var browser = fixture.NewBrowser();

        var signIn = await SignInAsync(browser, confidential ? Web : Spa);

        // The library has checked state, the RFC 9207 iss parameter, the ID token's signature, iss, aud and nonce.
        Assert.Equal(fixture.UserId, signIn.Text("claims", "sub"));
        Assert.Equal(fixture.Issuer, signIn.Text("claims", "iss"));
        Assert.Equal(fixture.User.Email, signIn.Text("claims", "email"));
        Assert.NotEmpty(signIn.Text("tokens", "refresh_token"));
        Assert.Equal(1, browser.SignIns);
    }

    [Fact]
    public async Task Discovery_AfterSignIn_ListsEveryClaimAndAcrIssued()
    {
        using var browser = fixture.NewBrowser();
        var signIn = await SignInAsync(browser);
        var userinfo = await UserInfoAsync(signIn.Text("tokens", "access_token"));

        var metadata = (await PublicClient.RunAsync("discovery")).AssertOk();

        // Discovery §3: claims_supported names the claims the provider can supply (the user's and the session's),
        // acr_values_supported the levels it issues.
        string[] sessionClaims = ["auth_time", "amr", "acr", "sid"];
        var issued = userinfo.Node("userinfo").AsObject().Select(p => p.Key)
            .Concat(signIn.Node("claims").AsObject().Select(p => p.Key).Where(sessionClaims.Contains))
            .ToHashSet(StringComparer.Ordinal);
        var unlisted = issued.Except(Strings(metadata.Node("metadata", "claims_supported")), StringComparer.Ordinal).Order(StringComparer.Ordinal);
        Assert.True(!unlisted.Any(), $"Issued but not in claims_supported: {string.Join(", ", unlisted)}");
        Assert.Contains(signIn.Text("claims", "acr"), Strings(metadata.Node("metadata", "acr_values_supported")));
    }

    [Fact]
    public async Task UserInfo_WithAccessTokenOfTheCodeFlow_ReturnsTheSameSubject()
    {
        using var browser = fixture.NewBrowser();
        var signIn = await SignInAsync(browser);

        var result = await UserInfoAsync(signIn.Text("tokens", "access_token"));

        Assert.Equal(fixture.User.Email, result.Text("userinfo", "email"));
    }

    [Fact]
    public async Task Refresh_WithIssuedRefreshToken_RotatesIt()
    {
        using var browser = fixture.NewBrowser();
        var signIn = await SignInAsync(browser);
        var first = signIn.Text("tokens", "refresh_token");

        var result = (await Refresh(first)).AssertOk();

        Assert.NotEqual(first, result.Text("tokens", "refresh_token"));
        Assert.NotEqual(signIn.Text("tokens", "access_token"), result.Text("tokens", "access_token"));
        Assert.Equal(fixture.UserId, result.Text("claims", "sub"));
    }

    [Fact]
    public async Task Refresh_ReusingRotatedToken_FailsAndRevokesItsSuccessor()
    {
        using var browser = fixture.NewBrowser();
        var first = (await SignInAsync(browser)).Text("tokens", "refresh_token");
        var second = (await Refresh(first)).AssertOk().Text("tokens", "refresh_token");

        // RFC 9700 §4.14.2: a public client's rotated refresh token used again is theft; no leeway by default.
        var replay = await Refresh(first);
        var successor = await Refresh(second);

        Assert.Equal("invalid_grant", replay.Error);
        Assert.Equal("invalid_grant", successor.Error);
    }

    [Fact]
    public async Task MaxAgeZero_WithExistingSession_SignsInAgainWithFreshAuthTime()
    {
        using var browser = fixture.NewBrowser();
        var earlier = long.Parse(Claim(await SignInAsync(browser), "auth_time"), System.Globalization.CultureInfo.InvariantCulture);
        await Task.Delay(TimeSpan.FromSeconds(1.1)); // auth_time has whole seconds: the new one must be later

        // OpenID Connect Core §3.1.2.1: max_age=0 asks for a new sign-in, which then satisfies the request.
        var again = await SignInAsync(browser, parameters: new JsonObject { ["max_age"] = "0" }, maxAge: 0);

        Assert.Equal(2, browser.SignIns);
        Assert.True(long.Parse(Claim(again, "auth_time"), System.Globalization.CultureInfo.InvariantCulture) > earlier,
            $"auth_time {Claim(again, "auth_time")} is not later than the first sign-in's {earlier}");
    }

    [Fact]
    public async Task EndSession_WithIdTokenHint_EndsTheSessionAndReturnsState()
    {
        using var browser = fixture.NewBrowser();
        var signIn = await SignInAsync(browser);
        var silent = await SilentSignInAsync(browser);
        Assert.True(silent.Ok, $"prompt=none with a session should succeed: {silent}");
        var logout = (await PublicClient.RunAsync("end_session_url", new JsonObject
        {
            ["parameters"] = new JsonObject
            {
                ["id_token_hint"] = signIn.Text("tokens", "id_token"),
                ["post_logout_redirect_uri"] = InteropFixture<TDatabase>.PublicPostLogoutRedirectUri.AbsoluteUri,
                ["state"] = "bye-1",
            },
        })).AssertOk();

        var confirmation = await browser.OpenAsync(logout.Text("url"));
        var back = await browser.SubmitAsync(confirmation);
        var afterLogout = await SilentSignInAsync(browser);

        // RP-Initiated Logout 1.0 §3: back at the registered URI with the state; the session is gone (Core §3.1.2.6).
        Assert.Equal(InteropFixture<TDatabase>.PublicPostLogoutRedirectUri.AbsoluteUri, back.Url.GetLeftPart(UriPartial.Path));
        Assert.Equal("bye-1", back.Query["state"]);
        Assert.Equal("login_required", afterLogout.Error);
    }

    /// <summary>The whole code flow: the library's URL, the browser (signing in if asked), the library's grant.</summary>
    private async Task<RelyingPartyResult> SignInAsync(
        UserAgent browser, CodeFlowClient? client = null, JsonObject? parameters = null, int? maxAge = null)
    {
        var (rp, redirectUri) = client ?? Spa;
        var request = (await rp.RunAsync("authorization_url", new JsonObject
        {
            ["redirectUri"] = redirectUri.AbsoluteUri,
            ["scope"] = Scope,
            ["parameters"] = parameters ?? [],
        })).AssertOk();
        var callback = await browser.OpenAsync(request.Text("url"), fixture.User);
        Assert.Equal(redirectUri.AbsoluteUri, callback.Url.GetLeftPart(UriPartial.Path));
        return (await rp.RunAsync("authorization_code", new JsonObject
        {
            ["callbackUrl"] = callback.Url.AbsoluteUri,
            ["state"] = request.Text("state"),
            ["nonce"] = request.Text("nonce"),
            ["codeVerifier"] = request.Text("codeVerifier"),
            ["maxAge"] = maxAge,
        })).AssertOk();
    }

    /// <summary>A code flow with <c>prompt=none</c> and no person to sign in: its result, success or the library's error.</summary>
    private async Task<RelyingPartyResult> SilentSignInAsync(UserAgent browser)
    {
        var request = (await PublicClient.RunAsync("authorization_url", new JsonObject
        {
            ["redirectUri"] = InteropFixture<TDatabase>.PublicRedirectUri.AbsoluteUri,
            ["scope"] = Scope,
            ["parameters"] = new JsonObject { ["prompt"] = "none" },
        })).AssertOk();
        var callback = await browser.OpenAsync(request.Text("url"));
        return await PublicClient.RunAsync("authorization_code", new JsonObject
        {
            ["callbackUrl"] = callback.Url.AbsoluteUri,
            ["state"] = request.Text("state"),
            ["nonce"] = request.Text("nonce"),
            ["codeVerifier"] = request.Text("codeVerifier"),
        });
    }

    /// <summary>Userinfo for the test user (OpenID Connect Core §5.3.2: the library refuses another sub).</summary>
    private async Task<RelyingPartyResult> UserInfoAsync(string accessToken) =>
        (await PublicClient.RunAsync("userinfo", new JsonObject { ["accessToken"] = accessToken, ["expectedSubject"] = fixture.UserId }))
        .AssertOk();

    private Task<RelyingPartyResult> Refresh(string refreshToken) =>
        PublicClient.RunAsync("refresh", new JsonObject { ["refreshToken"] = refreshToken });

    private void AssertServiceToken(RelyingPartyResult result, string clientId)
    {
        Assert.Equal("bearer", result.Text("tokens", "token_type"), ignoreCase: true);
        Assert.Equal(fixture.Issuer, result.Text("accessTokenClaims", "iss"));
        Assert.Equal(clientId, result.Text("accessTokenClaims", "client_id"));
        Assert.True(result.Node("introspection", "active").GetValue<bool>(), $"introspection: {result}");
    }

    private static string Claim(RelyingPartyResult result, string name) => result.Node("claims", name).ToJsonString();

    private static IEnumerable<string> Strings(JsonNode array) => array.AsArray().Select(n => n!.GetValue<string>());

    /// <summary>A client of the code flow as openid-client drives it, and the callback registered for it.</summary>
    private sealed record CodeFlowClient(NodeRelyingParty RelyingParty, Uri RedirectUri);
}

[Collection(SqliteInterop.Name)]
public sealed class OpenIdClientOnSqliteTests(InteropFixture<SqliteTestDatabase> fixture) : OpenIdClientTests<SqliteTestDatabase>(fixture);

[Collection(PostgresInterop.Name)]
public sealed class OpenIdClientOnPostgresTests(InteropFixture<PostgresTestDatabase> fixture) : OpenIdClientTests<PostgresTestDatabase>(fixture);
