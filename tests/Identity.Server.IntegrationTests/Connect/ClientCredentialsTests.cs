using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>Discovery, JWKS and machine-to-machine tokens, run once per database provider.</summary>
public abstract class ClientCredentialsTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    protected HttpClient Client => fixture.Client;

    [Fact]
    public async Task Discovery_Always_DescribesEndpointsFlowsAndS256Only()
    {
        var document = await (await Client.GetAsync("/.well-known/openid-configuration")).JsonAsync();

        Assert.Equal("http://localhost/", document.GetProperty("issuer").GetString());
        Assert.Equal("http://localhost/connect/token", document.GetProperty("token_endpoint").GetString());
        Assert.Equal("http://localhost/connect/authorize", document.GetProperty("authorization_endpoint").GetString());
        Assert.Equal("http://localhost/connect/introspect", document.GetProperty("introspection_endpoint").GetString());
        Assert.Equal("http://localhost/connect/revoke", document.GetProperty("revocation_endpoint").GetString());
        Assert.Equal("http://localhost/connect/userinfo", document.GetProperty("userinfo_endpoint").GetString());
        Assert.Equal("http://localhost/connect/endsession", document.GetProperty("end_session_endpoint").GetString());
        Assert.Equal("http://localhost/.well-known/jwks", document.GetProperty("jwks_uri").GetString());
        Assert.Equal(["client_credentials", "authorization_code", "refresh_token"], Strings(document, "grant_types_supported"), StringComparer.Ordinal);
        Assert.Equal(["S256"], Strings(document, "code_challenge_methods_supported"));
        Assert.Equal(["RS256"], Strings(document, "id_token_signing_alg_values_supported"));
        Assert.Equal(["code"], Strings(document, "response_types_supported"));
        Assert.DoesNotContain("fragment", Strings(document, "response_modes_supported"));
        Assert.Equal(
            new[] { "client_secret_basic", "client_secret_post", "private_key_jwt" }.Order(),
            Strings(document, "token_endpoint_auth_methods_supported").Order());
    }

    [Fact]
    public async Task Jwks_Always_PublishesPublicRsaAndEcKeysOnly()
    {
        var jwks = await (await Client.GetAsync("/.well-known/jwks")).JsonAsync();
        var keys = jwks.GetProperty("keys").EnumerateArray().ToList();

        Assert.Contains(keys, k => k.GetProperty("kty").GetString() == "RSA" && k.GetProperty("alg").GetString() == "RS256");
        Assert.Contains(keys, k => k.GetProperty("kty").GetString() == "EC" && k.GetProperty("alg").GetString() == "ES256");
        foreach (var key in keys)
        {
            // RFC 7518 §6.2.2 / §6.3.2: the private members of EC and RSA keys.
            foreach (var secret in new[] { "d", "p", "q", "dp", "dq", "qi", "k" })
            {
                Assert.False(key.TryGetProperty(secret, out _), $"JWKS key {key.GetProperty("kid")} exposes '{secret}'");
            }
        }
    }

    public static TheoryData<string> AuthenticationMethods => ["client_secret_basic", "client_secret_post", "private_key_jwt"];

    [Theory]
    [MemberData(nameof(AuthenticationMethods))]
    public async Task ClientCredentials_EachAuthenticationMethod_IssuesJwtThatVerifiesAgainstJwks(string method)
    {
        var response = method switch
        {
            "client_secret_basic" => await Client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read"),
            "client_secret_post" => await Client.PostFormAsync("/connect/token",
            [
                new("grant_type", "client_credentials"), new("scope", "api.read"),
                new("client_id", "svc-basic"), new("client_secret", fixture.BasicSecret),
            ]),
            _ => await Client.PostFormAsync("/connect/token",
            [
                new("grant_type", "client_credentials"), new("scope", "api.read"),
                new("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                new("client_assertion", TokenClient.CreateClientAssertion("svc-jwt", fixture.JwtClientKey, ServerFixture<TDatabase>.Issuer)),
            ]),
        };

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.OK);
        Assert.Equal("Bearer", body.GetProperty("token_type").GetString());
        var token = body.GetProperty("access_token").GetString()!;

        var result = await Client.ValidateAccessTokenAsync(token, ServerFixture<TDatabase>.Api);
        Assert.True(result.IsValid, result.Exception?.Message);

        var jwt = (JsonWebToken)result.SecurityToken;
        var clientId = method == "private_key_jwt" ? "svc-jwt" : "svc-basic";
        Assert.Equal("ES256", jwt.Alg);
        Assert.Equal("at+jwt", jwt.Typ);
        Assert.Equal(ServerFixture<TDatabase>.Issuer, jwt.Issuer);
        Assert.Equal(clientId, jwt.Subject);
        Assert.Equal(clientId, jwt.GetClaim("client_id").Value);
        Assert.Equal([ServerFixture<TDatabase>.Api], jwt.Audiences);
        Assert.Equal("api.read", jwt.GetClaim("scope").Value);
        Assert.True(Guid.TryParse(jwt.Id, out _), "jti must be a unique identifier");
        Assert.InRange((jwt.ValidTo - jwt.IssuedAt).TotalSeconds, 599, 601);
    }

    // RFC 7523 §3 requires no typ header, and most libraries send none (or "JWT"); draft-ietf-oauth-rfc7523bis §4 makes
    // the issuer the only audience and "client-authentication+jwt" the explicit type. An assertion without that type is
    // accepted only with exactly the issuer as its audience, which is what protects it from being taken for another
    // JWT the client signed; any other audience (the token endpoint URL included) or another explicit type is refused.
    [Theory]
    [InlineData(null, "issuer", HttpStatusCode.OK)]
    [InlineData("JWT", "issuer", HttpStatusCode.OK)]
    [InlineData(null, "token-endpoint", HttpStatusCode.Unauthorized)]
    [InlineData("JWT", "token-endpoint", HttpStatusCode.Unauthorized)]
    [InlineData(null, "issuer-without-slash", HttpStatusCode.Unauthorized)]
    [InlineData("dpop+jwt", "issuer", HttpStatusCode.Unauthorized)]
    [InlineData("at+jwt", "issuer", HttpStatusCode.Unauthorized)]
    public async Task PrivateKeyJwt_AssertionType_AcceptedUntypedOnlyWithTheIssuerAsAudience(string? type, string audience, HttpStatusCode expected)
    {
        var issuer = ServerFixture<TDatabase>.Issuer;
        var aud = audience switch
        {
            "issuer" => issuer,
            "token-endpoint" => issuer + "connect/token",
            _ => issuer.TrimEnd('/'),
        };
        var assertion = type is null
            ? TokenClient.CreateUntypedClientAssertion("svc-jwt", fixture.JwtClientKey, aud)
            : TokenClient.CreateClientAssertion("svc-jwt", fixture.JwtClientKey, aud, type: type);

        var response = await Client.PostFormAsync("/connect/token",
        [
            new("grant_type", "client_credentials"), new("scope", "api.read"),
            new("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            new("client_assertion", assertion),
        ]);

        var body = await ResponseAssert.StatusAsync(response, expected);
        if (expected == HttpStatusCode.OK)
        {
            Assert.Equal("svc-jwt", new JsonWebToken(body.GetProperty("access_token").GetString()).Subject);
        }
        else
        {
            Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task ClientCredentials_ClientLifetimeOverride_ShortensToken()
    {
        var response = await Client.ClientCredentialsAsync("svc-short", fixture.ShortSecret, "api.read");

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.OK);
        Assert.InRange(body.GetProperty("expires_in").GetInt32(), 59, 60); // seconds left, rounded down
        var jwt = new JsonWebToken(body.GetProperty("access_token").GetString());
        Assert.Equal(60, (jwt.ValidTo - jwt.IssuedAt).TotalSeconds);
    }

    [Theory]
    [InlineData("admin.all")] // exists, but svc-basic may not use it
    [InlineData("no.such.scope")]
    [InlineData("api.read admin.all")]
    public async Task ClientCredentials_ScopeNotAllowed_InvalidScope(string scope)
    {
        var response = await Client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, scope);

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_scope", body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public void ClientDefinition_EmptySecretFile_RefusesToStartNamingTheKey(string file)
    {
        // As an environment variable left empty (Oidc__Clients__0__SecretFile=) delivers it.
        var host = fixture.StartServer(settings => settings["Oidc:Clients:0:SecretFile"] = file);

        var error = Record.Exception(() => host.Start());

        Assert.IsType<Microsoft.Extensions.Options.OptionsValidationException>(error?.GetBaseException());
        Assert.Contains("Oidc:Clients:0:SecretFile cannot be read", error!.GetBaseException().Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientCredentials_WrongSecret_Unauthorized()
    {
        var response = await Client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret + "x", "api.read");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_client", (await response.JsonAsync()).GetProperty("error").GetString());
        Assert.StartsWith("Basic", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientCredentials_ResourceParameterOutsideScopes_InvalidTarget()
    {
        var response = await Client.PostFormAsync("/connect/token",
            [new("grant_type", "client_credentials"), new("scope", "api.read"), new("resource", ServerFixture<TDatabase>.AdminApi)],
            ("svc-basic", fixture.BasicSecret));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_target", (await response.JsonAsync()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Introspection_IssuedToken_IsActiveWithItsClaims()
    {
        var token = (await (await Client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read")).JsonAsync())
            .GetProperty("access_token").GetString()!;

        var introspection = await (await Client.PostFormAsync("/connect/introspect", [new("token", token)],
            ("svc-basic", fixture.BasicSecret))).JsonAsync();

        Assert.True(introspection.GetProperty("active").GetBoolean());
        Assert.Equal("svc-basic", introspection.GetProperty("client_id").GetString());
    }

    [Fact]
    public async Task Introspection_ForgedToken_IsInactive()
    {
        var token = (await (await Client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read")).JsonAsync())
            .GetProperty("access_token").GetString()!;
        var forged = token[..^4] + (token[^4] == 'A' ? "BBBB" : "AAAA");

        var introspection = await (await Client.PostFormAsync("/connect/introspect", [new("token", forged)],
            ("svc-basic", fixture.BasicSecret))).JsonAsync();

        Assert.False(introspection.GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Health_Ready_ReportsDatabase()
    {
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/health/live")).StatusCode);
        var ready = await Client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var report = await ready.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Healthy", report.GetProperty("status").GetString());
        Assert.Equal("Healthy", report.GetProperty("checks").GetProperty("database").GetString());
        Assert.False(report.GetProperty("checks").TryGetProperty("broker", out _)); // no broker configured
    }

    private static List<string> Strings(JsonElement document, string name) =>
        document.GetProperty(name).EnumerateArray().Select(e => e.GetString()!).ToList();
}

public sealed class SqliteClientCredentialsTests(ServerFixture<SqliteTestDatabase> fixture)
    : ClientCredentialsTests<SqliteTestDatabase>(fixture);

public sealed class PostgresClientCredentialsTests(ServerFixture<PostgresTestDatabase> fixture)
    : ClientCredentialsTests<PostgresTestDatabase>(fixture);
