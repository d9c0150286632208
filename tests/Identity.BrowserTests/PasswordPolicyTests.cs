using System.Text.RegularExpressions;
using Identity.BrowserTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>The account's password rules as a person meets them: an expired password, a weak or reused one.</summary>
public sealed class PasswordPolicyTests(RegionsFixture regions) : BrowserTest(regions)
{
    private const string Password = "Correct-Horse-Battery-9";

    private PasswordPage PasswordPage => new(Page);

    private Task<string> UserAsync(string policyJson, TimeSpan passwordAge) =>
        Regions.CreateAccountMemberAsync(policyJson, Password, passwordAge);

    [Fact]
    public async Task SignIn_ExpiredPassword_ChangedFirstThenTheAppIsSignedIn()
    {
        // Arrange: a password set 31 days ago, in an account where passwords last 30.
        var email = await UserAsync("""{"password":{"maximumAge":"30.00:00:00"}}""", TimeSpan.FromDays(31));
        await Page.GotoAsync(At(Regions.Eu, "/me"));
        await ExpectLoginPageAsync();

        // Act
        await Login.SignInAsync(email, Password);
        await Expect(Page).ToHaveURLAsync(new Regex("^" + Regex.Escape(At(Regions.Identity, PasswordPage.Path)) + "\\?"));
        await Expect(PasswordPage.Expired).ToBeVisibleAsync();
        await Expect(PasswordPage.New).ToHaveAttributeAsync("autocomplete", "new-password");
        await PasswordPage.ChangeAsync(Password, "A-fresh-spring-password-4");

        // Assert: back through the authorize request, which now issues the code.
        await Expect(Page).ToHaveURLAsync(At(Regions.Eu, "/me"));
        await Expect(Region.Who).ToContainTextAsync($"Signed in as {email} (");
    }

    [Fact]
    public async Task ChangePassword_WeakCommonOrReused_RefusedWithAVisibleReason()
    {
        // Arrange
        var email = await UserAsync("{}", TimeSpan.Zero);
        await Page.GotoAsync(At(Regions.Identity, PasswordPage.Path));
        await ExpectLoginPageAsync();
        await Login.SignInAsync(email, Password);
        await Expect(Page).ToHaveURLAsync(At(Regions.Identity, PasswordPage.Path));
        await Expect(PasswordPage.Current).ToHaveAttributeAsync("autocomplete", "current-password");

        // Act and assert: each refusal says why, and nothing is changed.
        await PasswordPage.ChangeAsync(Password, "Short-1");
        await Expect(Page.GetByText("Use at least 12 characters.")).ToBeVisibleAsync();

        await PasswordPage.ChangeAsync(Password, "Unbelievable");
        await Expect(Page.GetByText("This password is one of the most commonly used; choose another.")).ToBeVisibleAsync();

        await PasswordPage.ChangeAsync(Password, Password);
        await Expect(Page.GetByText("Choose a password different from your last 5.")).ToBeVisibleAsync();

        await PasswordPage.ChangeAsync(Password, "A-fresh-spring-password-4");
        await Expect(Page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Your password was changed.");
    }
}
