using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using Identity.Core.Data;
using Identity.Server.Account.Mfa;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OtpNet;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>
/// Passkeys over HTTP: the relying party from configuration (validated at start), the options each page hands the
/// browser, and the ceremonies' binding to the right user. The browser tests register and use real passkeys.
/// </summary>
public sealed class PasskeyTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Password = "Correct-Horse-Battery-9";

    [Fact]
    public async Task RelyingParty_ByDefault_IsTheIssuersHostAndOrigin()
    {
        var options = fixture.Server.Services.GetRequiredService<IOptions<IdentityPasskeyOptions>>().Value;

        Assert.Equal("localhost", options.ServerDomain); // Oidc:Issuer is http://localhost/
        Assert.Equal("required", options.UserVerificationRequirement);
        Assert.Equal("required", options.ResidentKeyRequirement);
        Assert.NotNull(options.ValidateOrigin);
        Assert.True(await OriginAcceptedAsync(options, "http://localhost"));
        Assert.False(await OriginAcceptedAsync(options, "http://localhost:8080"));
        Assert.False(await OriginAcceptedAsync(options, "https://evil.example"));
        Assert.False(await OriginAcceptedAsync(options, "http://localhost", crossOrigin: true));
    }

    [Theory]
    [InlineData("Passkeys:ServerDomain", "127.0.0.1", "Passkeys:ServerDomain must be a domain name, not an IP address")]
    [InlineData("Passkeys:ServerDomain", "https://id.example.com", "Passkeys:ServerDomain must be a host name")]
    [InlineData("Passkeys:AllowedOrigins:0", "https://evil.example", "Passkeys:AllowedOrigins:0 (evil.example) is neither localhost nor a subdomain")]
    [InlineData("Passkeys:AllowedOrigins:0", "http://localhost/path", "Passkeys:AllowedOrigins:0 must be an origin")]
    public async Task Start_WrongRelyingParty_RefusesAndNamesTheKey(string key, string value, string expected)
    {
        var settings = fixture.Settings();
        settings[key] = value;
        await using var host = new IdentityServerHost(settings);

        var error = Record.Exception(() => host.Start());

        Assert.NotNull(error);
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoginPageOptions_Anonymous_AskForAnyDiscoverablePasskeyWithUserVerification()
    {
        var browser = new BrowserSession(fixture.Server);
        var login = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Login"), HttpStatusCode.OK);
        Assert.Contains("Sign in with a passkey", login, StringComparison.Ordinal);
        Assert.Contains("src=\"/js/passkeys.js", login, StringComparison.Ordinal);

        var options = await ResponseAssert.StatusAsync(
            await browser.SubmitAsync("/Account/PasskeySignIn?handler=Options", login, new Dictionary<string, string>()), HttpStatusCode.OK);

        Assert.Equal("localhost", options.GetProperty("rpId").GetString());
        Assert.Equal("required", options.GetProperty("userVerification").GetString());
        Assert.Equal(0, options.TryGetProperty("allowCredentials", out var allowed) ? allowed.GetArrayLength() : 0);
        Assert.True(Base64Url.DecodeFromChars(options.GetProperty("challenge").GetString()).Length >= 16);
    }

    [Fact]
    public async Task SecondStepOptions_WithoutPassword_Unauthorized()
    {
        var browser = new BrowserSession(fixture.Server);
        var login = await (await browser.GetAsync("/Account/Login")).Content.ReadAsStringAsync();

        var response = await browser.SubmitAsync("/Account/TwoFactorPasskey?handler=Options", login, new Dictionary<string, string>());

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task SecondStepOptions_AfterPassword_ListThatUsersPasskeysAndKeepTheCodeStepGoing()
    {
        // Arrange: an authenticator app and a passkey.
        var (email, secret, credentialId) = await UserWithTotpAndPasskeyAsync();
        var browser = new BrowserSession(fixture.Server);
        var afterPassword = await browser.SignInAsync("/Account/Login?ReturnUrl=%2F", email, Password);
        Assert.StartsWith("/Account/TwoFactor", BrowserSession.Location(afterPassword).OriginalString, StringComparison.Ordinal);
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/TwoFactor?ReturnUrl=%2F"), HttpStatusCode.OK);
        Assert.Contains("Use a passkey", page, StringComparison.Ordinal);

        // Act: the passkey options, then (changing one's mind) the authenticator code.
        var options = await ResponseAssert.StatusAsync(
            await browser.SubmitAsync("/Account/TwoFactorPasskey?handler=Options", page, new Dictionary<string, string>()), HttpStatusCode.OK);
        var code = await browser.SubmitAsync("/Account/TwoFactor?handler=Totp", page,
            new Dictionary<string, string> { ["code"] = new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp() });

        // Assert: only this user's passkey is asked for, and the pending password step survived the options.
        var allowed = options.GetProperty("allowCredentials").EnumerateArray().Select(c => c.GetProperty("id").GetString()).ToList();
        Assert.Equal([Base64Url.EncodeToString(credentialId)], allowed);
        Assert.Equal("localhost", options.GetProperty("rpId").GetString());
        Assert.Equal("/", BrowserSession.Location(code).OriginalString);
    }

    [Fact]
    public async Task SecondStep_WithPasswordlessChallengeInstead_BackToLoginWithoutSession()
    {
        // Arrange: a passwordless challenge (no user named), never a password.
        var browser = new BrowserSession(fixture.Server);
        var login = await (await browser.GetAsync("/Account/Login")).Content.ReadAsStringAsync();
        await browser.SubmitAsync("/Account/PasskeySignIn?handler=Options", login, new Dictionary<string, string>());

        // Act: presented to the second step.
        var response = await browser.SubmitAsync("/Account/TwoFactorPasskey?ReturnUrl=%2F", login,
            new Dictionary<string, string> { ["credential"] = "{}" });

        // Assert
        Assert.StartsWith("/Account/Login", BrowserSession.Location(response).OriginalString, StringComparison.Ordinal);
        Assert.DoesNotContain(SetCookies(response), c => c.StartsWith("identity.session=", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("{\"id\":\"AAAA\",\"type\":\"public-key\",\"response\":{}}")]
    public async Task PasskeySignIn_NoValidAssertion_BackToLoginWithGenericErrorAndNoSession(string credential)
    {
        var browser = new BrowserSession(fixture.Server);
        var login = await (await browser.GetAsync("/Account/Login")).Content.ReadAsStringAsync();
        await browser.SubmitAsync("/Account/PasskeySignIn?handler=Options", login, new Dictionary<string, string>());

        var response = await browser.SubmitAsync("/Account/PasskeySignIn", login, new Dictionary<string, string> { ["credential"] = credential });
        var back = await ResponseAssert.HtmlAsync(await browser.GetAsync(BrowserSession.Location(response).OriginalString), HttpStatusCode.OK);

        Assert.StartsWith("/Account/Login", BrowserSession.Location(response).OriginalString, StringComparison.Ordinal);
        Assert.DoesNotContain(SetCookies(response), c => c.StartsWith("identity.session=", StringComparison.Ordinal));
        Assert.Contains("That passkey could not sign you in.", back, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PasskeyPage_Anonymous_GoesToLogin()
    {
        var response = await fixture.Client.GetAsync("/Account/Passkeys");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("http://localhost/Account/Login", BrowserSession.Location(response).AbsoluteUri, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HasAnyFactor_OnlyAPasskey_True()
    {
        var email = $"pk-only-{Guid.NewGuid():n}@example.test";
        await fixture.CreateUserAsync(email, Password);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var factors = scope.ServiceProvider.GetRequiredService<SecondFactors>();
        var user = (await users.FindByEmailAsync(email))!;
        Assert.False(await factors.HasAnyFactorAsync(user));

        await users.AddOrUpdatePasskeyAsync(user, StoredPasskey(RandomNumberGenerator.GetBytes(16)));

        Assert.False(await factors.HasTotpAsync(user));
        Assert.True(await factors.HasPasskeyAsync(user));
        Assert.True(await factors.HasAnyFactorAsync(user));
    }

    private async Task<(string Email, string Secret, byte[] CredentialId)> UserWithTotpAndPasskeyAsync()
    {
        var email = $"pk-{Guid.NewGuid():n}@example.test";
        await fixture.CreateUserAsync(email, Password);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var factors = scope.ServiceProvider.GetRequiredService<SecondFactors>();
        var user = (await users.FindByEmailAsync(email))!;
        var secret = await factors.BeginEnrollmentAsync(user);
        Assert.NotNull(await factors.ConfirmEnrollmentAsync(user,
            new Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(DateTime.UtcNow.AddSeconds(-30))));
        var credentialId = RandomNumberGenerator.GetBytes(16);
        Assert.True((await users.AddOrUpdatePasskeyAsync(user, StoredPasskey(credentialId))).Succeeded);
        return (email, secret, credentialId);
    }

    /// <summary>A stored passkey as Identity keeps it (its key is never used here: no assertion can verify).</summary>
    private static UserPasskeyInfo StoredPasskey(byte[] credentialId) =>
        new(credentialId, publicKey: [0xA5], createdAt: DateTimeOffset.UtcNow, signCount: 0, transports: ["internal"],
            isUserVerified: true, isBackupEligible: false, isBackedUp: false, attestationObject: [0xA0], clientDataJson: [0x7B, 0x7D])
        {
            Name = "Test key",
        };

    private static async Task<bool> OriginAcceptedAsync(IdentityPasskeyOptions options, string origin, bool crossOrigin = false) =>
        await options.ValidateOrigin!(new PasskeyOriginValidationContext { HttpContext = new DefaultHttpContext(), Origin = origin, CrossOrigin = crossOrigin });

    private static IEnumerable<string> SetCookies(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [];
}
