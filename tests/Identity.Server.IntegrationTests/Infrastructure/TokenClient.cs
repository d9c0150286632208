using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>What a relying party or a service does against the token endpoint, written with standard libraries.</summary>
public static class TokenClient
{
    public static Task<HttpResponseMessage> PostFormAsync(this HttpClient client, string path,
        IEnumerable<KeyValuePair<string, string>> form, (string Id, string Secret)? basic = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        if (basic is { } credentials)
        {
            // RFC 6749 §2.3.1: form-urlencode the id and secret before base64.
            var raw = $"{Uri.EscapeDataString(credentials.Id)}:{Uri.EscapeDataString(credentials.Secret)}";
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(raw)));
        }

        return client.SendAsync(request);
    }

    /// <summary>Redeems an authorization code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5), client_secret_basic.</summary>
    public static Task<HttpResponseMessage> RedeemCodeAsync(this HttpClient client, string code, string verifier, string redirectUri,
        (string Id, string Secret) basic) =>
        client.PostFormAsync("/connect/token",
            [new("grant_type", "authorization_code"), new("code", code), new("code_verifier", verifier), new("redirect_uri", redirectUri)], basic);

    /// <summary><see cref="RedeemCodeAsync(HttpClient, string, string, string, ValueTuple{string, string})"/> with the code of an authorize callback.</summary>
    public static Task<HttpResponseMessage> RedeemCodeAsync(this HttpClient client, Uri callback, string verifier, string redirectUri,
        (string Id, string Secret) basic) =>
        client.RedeemCodeAsync(BrowserSession.Query(callback)["code"], verifier, redirectUri, basic);

    public static Task<HttpResponseMessage> ClientCredentialsAsync(this HttpClient client, string clientId, string secret, string scope) =>
        client.PostFormAsync("/connect/token", [new("grant_type", "client_credentials"), new("scope", scope)], (clientId, secret));

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>An RFC 7523 client assertion as <c>private_key_jwt</c> clients build it.</summary>
    public static string CreateClientAssertion(string clientId, ECDsa key, string audience,
        DateTime? expires = null, string type = "client-authentication+jwt")
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = clientId,
            Audience = audience,
            Subject = new ClaimsIdentity([new Claim("sub", clientId), new Claim("jti", Guid.NewGuid().ToString())]),
            IssuedAt = (expires ?? now.AddMinutes(1)).AddMinutes(-2),
            NotBefore = (expires ?? now.AddMinutes(1)).AddMinutes(-2),
            Expires = expires ?? now.AddMinutes(1),
            TokenType = type,
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key) { KeyId = "svc-jwt-1" }, SecurityAlgorithms.EcdsaSha256),
        });
    }

    /// <summary>
    /// A client assertion without a <c>typ</c> header, as openid-client and most libraries send it (RFC 7523 §3 requires
    /// none): built by hand, since IdentityModel always writes one. Without <paramref name="kid"/> the header names no key,
    /// as a client whose JWKS has one key may send it.
    /// </summary>
    public static string CreateUntypedClientAssertion(string clientId, ECDsa key, string audience, string? kid = "svc-jwt-1")
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64UrlEncoder.Encode(kid is null ? """{"alg":"ES256"}""" : $$"""{"alg":"ES256","kid":"{{kid}}"}""");
        var payload = Base64UrlEncoder.Encode(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["iss"] = clientId, ["sub"] = clientId, ["aud"] = audience, ["jti"] = Guid.NewGuid().ToString(),
            ["iat"] = now, ["exp"] = now + 60,
        }));
        var signature = key.SignData(Encoding.ASCII.GetBytes($"{header}.{payload}"), HashAlgorithmName.SHA256); // JWS: r || s
        return $"{header}.{payload}.{Base64UrlEncoder.Encode(signature)}";
    }

    /// <summary>Validates an access token the way a regional service does: JWKS, issuer, audience, type, lifetime.</summary>
    public static async Task<TokenValidationResult> ValidateAccessTokenAsync(this HttpClient client, string token, string audience)
    {
        var jwks = new JsonWebKeySet(await client.GetStringAsync("/.well-known/jwks"));
        return await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = ServerFixture<SqliteTestDatabase>.Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
            ValidateLifetime = true,
            ClockSkew = TimeSpan.Zero,
        });
    }
}

public static class ResponseAssert
{
    /// <summary>Asserts the status and, when it differs, shows the body so the failure explains itself.</summary>
    public static async Task<System.Text.Json.JsonElement> StatusAsync(HttpResponseMessage response, System.Net.HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        return string.IsNullOrEmpty(body) ? default : System.Text.Json.JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task<string> HtmlAsync(HttpResponseMessage response, System.Net.HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        return body;
    }
}
