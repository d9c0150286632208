using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;
using Identity.Server.Keys;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Keys;

/// <summary>
/// Decision 0105: while a rotation leaves two keys of an algorithm live, a token is checked and decrypted with the key
/// its <c>kid</c> names alone; a code issued before the rotation and one issued after are both redeemed, and a token
/// naming no key, or a key the ring does not know, is still given every key.
/// </summary>
public sealed class KeySelectionByKidTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    private SigningKeyRing Ring => fixture.Server.Services.GetRequiredService<SigningKeyRing>();

    private Task<(string Code, string Verifier)> CodeAsync() => fixture.WebEuCodeAsync();

    private async Task RedeemedAsync((string Code, string Verifier) code) =>
        await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(code.Code, code.Verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);

    [Fact]
    public async Task KeysFor_TwoLiveKeysAfterRotation_TheNamedKeyAloneAndCodesOfBothKeysRedeemed()
    {
        var before = await CodeAsync();
        var oldKeys = Ring.Keys;
        var admin = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/keys/rotate", "{}"), HttpStatusCode.OK);
        var newKeys = Ring.Keys;
        Assert.NotEqual(oldKeys.Encryption.Key.KeyId, newKeys.Encryption.Key.KeyId);

        Assert.Equal(2, Ring.KeysFor(null, KeyUse.Decryption).Count());
        foreach (var (key, use) in new (SecurityKey, KeyUse)[]
        {
            (oldKeys.Encryption.Key, KeyUse.Decryption), (newKeys.Encryption.Key, KeyUse.Decryption),
            (oldKeys.Internal.Key, KeyUse.InternalVerification), (newKeys.Internal.Key, KeyUse.InternalVerification),
            (oldKeys.Es256.Key, KeyUse.Verification), (newKeys.Rs256.Key, KeyUse.Verification),
            (newKeys.Es256.Key, KeyUse.InternalVerification), // a code signed ES256 before decision 0090
        })
        {
            Assert.Same(key, Assert.Single(Ring.KeysFor(key.KeyId, use)));
        }

        Assert.Equal(2, Ring.KeysFor("no-such-key", KeyUse.Decryption).Count());
        Assert.DoesNotContain(Ring.KeysFor(newKeys.Internal.Key.KeyId, KeyUse.Verification), k => k.KeyId == newKeys.Internal.Key.KeyId);

        await RedeemedAsync(before);
        await RedeemedAsync(await CodeAsync());
    }
}
