using System.Text.RegularExpressions;
using Identity.BrowserTests.Infrastructure;
using Identity.Core.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>
/// Second factors as a person meets them in Chromium: an authenticator app enrolled by reading the key off the page
/// (the test computes the codes, RFC 6238), a code that works once, recovery codes, the enrolment an account's policy
/// forces, and lockout with its end measured on a test clock. Each test has its own user.
/// </summary>
public sealed class MfaBrowserTests(RegionsFixture regions) : BrowserTest(regions)
{
    private const string Password = "Correct-Horse-Battery-9";

    private SecondFactorPage SecondFactor => new(Page);

    [Fact]
    public async Task SignIn_WithTotpCode_SignsInOnce_TheSameCodeAgainIsRefused()
    {
        // Arrange: a user enrolls an authenticator app after a password sign-in, then signs out.
        var email = await NewUserAsync();
        await SignInWithPasswordAsync(Regions.Eu, email);
        var enrollment = await EnrollTotpAsync();
        await SignOutAtAsync(Regions.Eu);

        // Act: the password, then a code from the app.
        await PasswordStepAsync(Page, email, Regions.UserPassword);
        var code = enrollment.NextCode();
        await SecondFactor.EnterCodeAsync(code);

        // Assert: signed in at eu with a multi-factor session.
        await ExpectSignedInAsync(Regions.Eu, email, amr: "pwd otp mfa");

        // Act: someone replays the very same code (same string, whatever the window is now) in another browser.
        await using var other = await Regions.NewContextAsync();
        var page = await other.NewPageAsync();
        await PasswordStepAsync(page, email, Regions.UserPassword);
        await new SecondFactorPage(page).EnterCodeAsync(code);

        // Assert: refused with a visible message (RFC 6238 §5.2), still on the second step, no session at eu.
        await Expect(new SecondFactorPage(page).Failure).ToBeVisibleAsync();
        await Expect(page).ToHaveURLAsync(SecondFactorUrl());
        Assert.DoesNotContain(await other.CookiesAsync([Regions.Eu.AbsoluteUri]), c => c.Name == "regionsample-eu");
    }

    [Fact]
    public async Task SignIn_WithRecoveryCode_SaysHowManyRemain_TheSameCodeAgainIsRefused()
    {
        // Arrange: enrolled at Identity itself (its login page, back to the authenticator page), then signed out.
        var email = await NewUserAsync();
        await Page.GotoAsync(At(Regions.Identity, TotpPage.Path));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(email, Regions.UserPassword);
        await Expect(Page).ToHaveURLAsync(At(Regions.Identity, TotpPage.Path));
        var recoveryCode = (await new TotpPage(Page).EnrollAsync()).RecoveryCodes[0];
        await Context.ClearCookiesAsync();

        // Act: the password, then the recovery code instead of an authenticator code.
        await Page.GotoAsync(At(Regions.Identity, LoginPage.Path));
        await Login.SignInAsync(email, Regions.UserPassword);
        await Expect(Page).ToHaveURLAsync(SecondFactorUrl());
        await SecondFactor.EnterRecoveryCodeAsync(recoveryCode);

        // Assert: signed in at Identity, told how many codes are left.
        var home = new HomePage(Page);
        await Expect(Page).ToHaveURLAsync(At(Regions.Identity, HomePage.Path));
        await Expect(home.SignedInAs(email)).ToBeVisibleAsync();
        await Expect(home.Notice).ToHaveTextAsync("You used a recovery code; 9 remain.");

        // Act: the same recovery code, in a new sign-in.
        await Context.ClearCookiesAsync();
        await Page.GotoAsync(At(Regions.Identity, LoginPage.Path));
        await Login.SignInAsync(email, Regions.UserPassword);
        await Expect(Page).ToHaveURLAsync(SecondFactorUrl());
        await SecondFactor.EnterRecoveryCodeAsync(recoveryCode);

        // Assert
        await Expect(SecondFactor.Failure).ToBeVisibleAsync();
        await Expect(Page).ToHaveURLAsync(SecondFactorUrl());
    }

    [Fact]
    public async Task SignIn_AccountRequiresMfa_UserWithoutFactor_EnrollsBeforeTheAppIsSignedIn()
    {
        // Arrange: an account whose policy requires a second factor of everyone; the user has none.
        var email = await Regions.CreateAccountMemberAsync("""{"mfa":{"requirement":"requiredForEveryone"}}""", Password);

        // Act: the app sends the user to sign in; the password is right.
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(email, Password);

        // Assert: the authenticator set-up comes before any code reaches the app.
        await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, TotpPage.Path)) + "\\?"));
        Assert.DoesNotContain(await Context.CookiesAsync([Regions.Eu.AbsoluteUri]), c => c.Name == "regionsample-eu");
        Assert.Empty(Navigations.PathsAt(Regions.Eu));

        // Act: enrolls (a code computed from the key on the page), continues, and proves the new factor.
        var totp = new TotpPage(Page);
        var enrollment = await totp.EnrollAsync();
        await totp.Continue.ClickAsync();
        await Expect(Page).ToHaveURLAsync(SecondFactorUrl());
        await SecondFactor.EnterCodeAsync(enrollment.NextCode());

        // Assert: the app is signed in, with a multi-factor session.
        await ExpectSignedInAsync(Regions.Eu, email, amr: "pwd otp mfa");
    }

    [Fact]
    public async Task SignIn_AfterMaxFailedAttempts_LockedOutEvenWithTheRightPassword_UntilTheDurationHasPassed()
    {
        // Arrange: an Identity of its own on a test clock (tokens issued on a moved clock would be refused by the
        // regional apps, so the sign-in is checked at Identity's own pages), and an account locking after 3 failures.
        var clock = new TestClock();
        await using var identity = await Regions.StartIdentityAsync(clock);
        var email = await Regions.CreateAccountMemberAsync(
            """{"lockout":{"maxFailedAttempts":3,"duration":"00:05:00"}}""", Password, identity: identity.Services);
        var login = At(identity.BaseAddress, LoginPage.Path);

        // Act: three wrong passwords.
        for (var i = 0; i < 3; i++)
        {
            await SignInAtLoginPageAsync(login, email, "Wrong-password-" + i);
            await Expect(Login.Failure).ToBeVisibleAsync();
        }

        // Assert: the right password is refused, with the same generic message, and still after four minutes.
        await SignInAtLoginPageAsync(login, email, Password);
        await Expect(Login.Failure).ToBeVisibleAsync();
        Assert.True(await IsLockedOutAsync(identity.Services, email));

        clock.Advance(TimeSpan.FromMinutes(4));
        await SignInAtLoginPageAsync(login, email, Password);
        await Expect(Login.Failure).ToBeVisibleAsync();

        // Act: past the five minutes.
        clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await SignInAtLoginPageAsync(login, email, Password);

        // Assert: signed in, away from the login page.
        await Expect(Page).ToHaveURLAsync(At(identity.BaseAddress, HomePage.Path));
        await Expect(new HomePage(Page).SignedInAs(email)).ToBeVisibleAsync();
    }

    private async Task<string> NewUserAsync()
    {
        var email = $"mfa-{Guid.NewGuid():n}@example.test";
        await Regions.CreateUserAsync(email, "MFA tester");
        return email;
    }

    /// <summary>On <paramref name="page"/>: the eu app sends the browser to sign in; the password is right; the second step shows.</summary>
    private async Task PasswordStepAsync(IPage page, string email, string password)
    {
        await page.GotoAsync(At(Regions.Eu, "/me"));
        await new LoginPage(page).SignInAsync(email, password);
        await Expect(page).ToHaveURLAsync(SecondFactorUrl());
    }

    /// <summary>A fresh login page each time, so the failure message awaited afterwards is the new answer's.</summary>
    private async Task SignInAtLoginPageAsync(string login, string email, string password)
    {
        await Page.GotoAsync(login);
        await Expect(Login.Failure).ToBeHiddenAsync();
        await Login.SignInAsync(email, password);
    }

    private Regex SecondFactorUrl() => new("^" + Regex.Escape(At(Regions.Identity, SecondFactorPage.Path)) + "(\\?|$)");

    private static async Task<bool> IsLockedOutAsync(IServiceProvider identity, string email)
    {
        await using var scope = identity.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        return await users.IsLockedOutAsync(await users.FindByEmailAsync(email) ?? throw new InvalidOperationException(email));
    }
}
