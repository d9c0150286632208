using System.Net;
using System.Text;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Identity.Server.Keys;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;

namespace Identity.Server.IntegrationTests.Keys;

/// <summary>
/// Decision 0090: codes and refresh tokens, which only Identity reads, are signed HS256 with a key derived from the
/// active encryption key; access and ID tokens stay asymmetric, and a token of theirs signed with the internal key is
/// refused; codes and refresh tokens signed ES256 before the change are still accepted.
/// </summary>
public sealed class InternalTokenSigningTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    private SigningKeyRing Ring => fixture.Server.Services.GetRequiredService<SigningKeyRing>();

    private Task<(string Code, string Verifier)> CodeAsync() => fixture.WebEuCodeAsync();

    private Task<HttpResponseMessage> RedeemAsync(string code, string verifier) =>
        fixture.Client.RedeemCodeAsync(code, verifier, Redirect, ("web-eu", fixture.WebSecret));

    /// <summary>
    /// The encrypted token behind what the client holds: codes are reference tokens (the client holds an identifier,
    /// the token entry the JWE), other tokens are the JWE itself.
    /// </summary>
    private async Task<string> EncryptedAsync(string token)
    {
        if (token.Contains('.', StringComparison.Ordinal))
        {
            return token;
        }

        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
        var entry = await tokens.FindByReferenceIdAsync(token) ?? throw new InvalidOperationException("No token entry.");
        return await tokens.GetPayloadAsync(entry) ?? throw new InvalidOperationException("No payload.");
    }

    /// <summary>The signed token inside one of Identity's encrypted tokens.</summary>
    private async Task<JsonWebToken> InnerAsync(string token)
    {
        var inner = new JsonWebTokenHandler().DecryptToken(new JsonWebToken(await EncryptedAsync(token)),
            new TokenValidationParameters { TokenDecryptionKeys = Ring.KeysFor(null, KeyUse.Decryption) });
        return new JsonWebToken(inner);
    }

    private async Task<HttpStatusCode> UserinfoAsync(string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        request.Headers.Authorization = new("Bearer", accessToken);
        return (await fixture.Client.SendAsync(request)).StatusCode;
    }

    [Fact]
    public async Task CodeAndRefreshToken_SignedHs256WithTheDerivedKey_AccessAndIdTokensStayAsymmetric()
    {
        var (code, verifier) = await CodeAsync();
        var encryptionKid = Ring.Keys.Encryption.Key.KeyId;

        var innerCode = await InnerAsync(code);
        Assert.Equal(SecurityAlgorithms.HmacSha256, innerCode.Alg);
        Assert.Equal(encryptionKid + ".hs", innerCode.Kid);
        Assert.Equal("oi_auc+jwt", innerCode.Typ);

        var tokens = await ResponseAssert.StatusAsync(await RedeemAsync(code, verifier), HttpStatusCode.OK);
        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;
        Assert.Equal(SecurityAlgorithms.HmacSha256, (await InnerAsync(refreshToken)).Alg);
        Assert.Equal(SecurityAlgorithms.EcdsaSha256, new JsonWebToken(tokens.GetProperty("access_token").GetString()!).Alg);
        Assert.Equal(SecurityAlgorithms.RsaSha256, new JsonWebToken(tokens.GetProperty("id_token").GetString()!).Alg);

        // The internal key is never published: the JWKS holds the asymmetric keys only.
        var jwks = new JsonWebKeySet(await fixture.Client.GetStringAsync("/.well-known/jwks"));
        Assert.DoesNotContain(jwks.Keys, k => k.Kid == innerCode.Kid || k.Kty == JsonWebAlgorithmsKeyTypes.Octet);

        // The refresh token, HS256-signed, is redeemed like any other.
        var refreshed = await fixture.Client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)], ("web-eu", fixture.WebSecret));
        await ResponseAssert.StatusAsync(refreshed, HttpStatusCode.OK);
    }

    [Fact]
    public async Task AccessToken_SignedWithTheInternalKey_Refused()
    {
        var (code, verifier) = await CodeAsync();
        var tokens = await ResponseAssert.StatusAsync(await RedeemAsync(code, verifier), HttpStatusCode.OK);
        var genuine = tokens.GetProperty("access_token").GetString()!;
        Assert.Equal(HttpStatusCode.OK, await UserinfoAsync(genuine));

        // The same header and claims, signed with the internal HS256 key: an access token (at+jwt) is not one of the
        // tokens that key may sign, wherever it is presented.
        var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(genuine.Split('.')[1]));
        var forged = new JsonWebTokenHandler().CreateToken(payload, Ring.Keys.Internal,
            new Dictionary<string, object> { [JwtHeaderParameterNames.Typ] = "at+jwt" });
        Assert.Equal(HttpStatusCode.Unauthorized, await UserinfoAsync(forged));

        var introspection = await (await fixture.Client.PostFormAsync("/connect/introspect", [new("token", forged)],
            ("web-eu", fixture.WebSecret))).JsonAsync();
        Assert.False(introspection.GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task Code_SignedEs256AsBeforeTheChange_StillRedeemed()
    {
        var (code, verifier) = await CodeAsync();
        var inner = await InnerAsync(code);
        var payload = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(inner.EncodedPayload));

        // What a replica of the previous version stored for this code: the same claims, signed with the active ES256 key,
        // encrypted as before.
        var outer = new JsonWebToken(await EncryptedAsync(code));
        var old = new JsonWebTokenHandler().CreateToken(payload, Ring.Keys.Es256, Ring.Keys.Encryption, CompressionAlgorithms.Deflate,
            new Dictionary<string, object> { [JwtHeaderParameterNames.Typ] = outer.Typ },
            new Dictionary<string, object> { [JwtHeaderParameterNames.Typ] = inner.Typ });
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
            var entry = (await tokens.FindByReferenceIdAsync(code))!;
            var descriptor = new OpenIddictTokenDescriptor();
            await tokens.PopulateAsync(descriptor, entry);
            descriptor.Payload = old;
            await tokens.UpdateAsync(entry, descriptor);
        }

        Assert.Equal(SecurityAlgorithms.EcdsaSha256, (await InnerAsync(code)).Alg);
        var redeemed = await ResponseAssert.StatusAsync(await RedeemAsync(code, verifier), HttpStatusCode.OK);
        Assert.False(string.IsNullOrEmpty(redeemed.GetProperty("id_token").GetString()));

        // Single use holds for it as for any code.
        var replay = await ResponseAssert.StatusAsync(await RedeemAsync(code, verifier), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", replay.GetProperty("error").GetString());
    }
}
