using System.Text.RegularExpressions;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>
/// Passkeys in a real browser, with Chromium's virtual authenticator: registered on <c>/Account/Passkeys</c>, used as
/// the second step after a password, and alone from the login page. Each test has its own user and authenticator.
/// </summary>
[Collection(PasskeySuite.Name)]
public sealed class PasskeyTests(PasskeyFixture world) : BrowserTest(world)
{
    private PasskeysPage Passkeys => new(Page);

    private PasskeyLoginPage PasskeyLogin => new(Page);

    [Fact]
    public async Task PasskeyAsSecondFactor_AfterPassword_SignsInWithPwdHwkMfa()
    {
        // Arrange: a user with an authenticator app (the login page's condition for a second step today) and a passkey.
        var email = await NewUserAsync();
        await VirtualAuthenticator.AttachAsync(Page);
        await SignInWithPasswordAsync(Regions.Eu, email);
        await EnrollTotpAsync();
        await RegisterPasskeyAsync("Laptop");
        await Context.ClearCookiesAsync();

        // Act: the password, then "Use a passkey" instead of a code.
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(email, Regions.UserPassword);
        await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, SecondFactorPage.Path))));
        await new SecondFactorPage(Page).UsePasskey.ClickAsync();

        // Assert: signed in at eu with a multi-factor session; the audit names the passkey, not its credential.
        await ExpectSignedInAsync(Regions.Eu, email, amr: "pwd hwk mfa");
        var added = await AuditAsync(email, "mfa.passkey_added");
        Assert.Contains("\"name\":\"Laptop\"", added, StringComparison.Ordinal);
        Assert.DoesNotContain("credential", added, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"methods\":[\"pwd\",\"hwk\",\"mfa\"]", await AuditAsync(email, "signin.succeeded"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignInWithPasskey_FromLoginPage_SignsInWithoutPassword()
    {
        // Arrange
        var email = await NewUserAsync();
        var authenticator = await VirtualAuthenticator.AttachAsync(Page);
        await SignInWithPasswordAsync(Regions.Eu, email);
        await RegisterPasskeyAsync("Phone");
        Assert.Equal(1, await authenticator.CredentialCountAsync()); // discoverable: kept by the authenticator
        await Context.ClearCookiesAsync();

        // Act: no email, no password.
        await Page.GotoAsync(At(Regions.Us, "/me"));
        await ExpectLoginPageAsync();
        await PasskeyLogin.SignInWithPasskey.ClickAsync();

        // Assert: possession of the key, user presence, and (user verification) a second factor — no password.
        await ExpectSignedInAsync(Regions.Us, email, amr: "hwk user mfa");
    }

    [Fact]
    public async Task SignInWithPasskey_DisabledUser_StaysOnLoginPageWithoutSession()
    {
        // Arrange: a registered passkey, then the user is disabled.
        var email = await NewUserAsync();
        await VirtualAuthenticator.AttachAsync(Page);
        await SignInWithPasswordAsync(Regions.Eu, email);
        await RegisterPasskeyAsync("Key");
        await Context.ClearCookiesAsync();
        await ChangeUserAsync(email, user => user.Status = UserStatus.Disabled);

        // Act
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await ExpectLoginPageAsync();
        await PasskeyLogin.SignInWithPasskey.ClickAsync();

        // Assert: the generic failure, on the login page, and no session.
        await Expect(PasskeyLogin.Failure).ToHaveTextAsync("That passkey could not sign you in.");
        await ExpectLoginPageAsync();
        Assert.DoesNotContain(await Context.CookiesAsync([Regions.Identity.AbsoluteUri]), c => c.Name == "identity.session");
    }

    [Fact]
    public async Task RemovePasskey_OnPasskeysPage_NoLongerSignsIn()
    {
        // Arrange
        var email = await NewUserAsync();
        var authenticator = await VirtualAuthenticator.AttachAsync(Page);
        await SignInWithPasswordAsync(Regions.Eu, email);
        await RegisterPasskeyAsync("Old key");

        // Act: removed at Identity (the authenticator still holds the credential).
        await Passkeys.Remove("Old key").ClickAsync();
        await Expect(Passkeys.None).ToBeVisibleAsync();
        await Context.ClearCookiesAsync();
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await ExpectLoginPageAsync();
        await PasskeyLogin.SignInWithPasskey.ClickAsync();

        // Assert
        await Expect(PasskeyLogin.Failure).ToHaveTextAsync("That passkey could not sign you in.");
        Assert.Equal(1, await authenticator.CredentialCountAsync());
        Assert.Contains("\"name\":\"Old key\"", await AuditAsync(email, "mfa.passkey_removed"), StringComparison.Ordinal);
        Assert.False(await ReadUserAsync(email, user => user.TwoFactorEnabled)); // the last second factor is gone
    }

    [Fact]
    public async Task PasswordSignIn_UserWithOnlyPasskey_AsksForSecondFactor()
    {
        // Arrange: a passkey is the user's only second factor.
        var email = await NewUserAsync();
        await VirtualAuthenticator.AttachAsync(Page);
        await SignInWithPasswordAsync(Regions.Eu, email);
        await RegisterPasskeyAsync("Only key");
        Assert.True(await ReadUserAsync(email, user => user.TwoFactorEnabled));
        await Context.ClearCookiesAsync();

        // Act
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(email, Regions.UserPassword);
        await new SecondFactorPage(Page).UsePasskey.ClickAsync();

        // Assert
        await ExpectSignedInAsync(Regions.Eu, email, amr: "pwd hwk mfa");
    }

    private async Task<string> NewUserAsync()
    {
        var email = $"pk-{Guid.NewGuid():n}@example.test";
        await Regions.CreateUserAsync(email, "Passkey tester");
        return email;
    }

    /// <summary>Registers a passkey in the page's virtual authenticator, on Identity's passkey page.</summary>
    private async Task RegisterPasskeyAsync(string name)
    {
        await Page.GotoAsync(At(Regions.Identity, PasskeysPage.Path));
        await Passkeys.AddAsync(name);
        await Expect(Passkeys.Listed.Filter(new() { HasText = name })).ToHaveCountAsync(1);
    }

    private async Task ChangeUserAsync(string email, Action<ApplicationUser> change)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = await users.FindByEmailAsync(email) ?? throw new InvalidOperationException(email);
        change(user);
        Assert.True((await users.UpdateAsync(user)).Succeeded);
    }

    private async Task<T> ReadUserAsync<T>(string email, Func<ApplicationUser, T> read)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        return read(await users.FindByEmailAsync(email) ?? throw new InvalidOperationException(email));
    }

    /// <summary>The details of the user's latest audit entry of that type.</summary>
    private async Task<string> AuditAsync(string email, string eventType)
    {
        await using var scope = Regions.IdentityServices.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var userId = (await users.FindByEmailAsync(email))?.Id;
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var entries = await db.AuditEntries.AsNoTracking()
            .Where(e => e.SubjectId == userId && e.EventType == eventType)
            .Select(e => new { e.Id, e.Details })
            .ToListAsync();
        Assert.NotEmpty(entries);
        return entries.OrderBy(e => e.Id).Last().Details ?? "";
    }
}
