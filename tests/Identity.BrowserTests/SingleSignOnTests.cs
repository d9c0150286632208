using Identity.BrowserTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>One Identity session shared by the regional apps: sign in once, re-authenticate on request, sign out everywhere.</summary>
public sealed class SingleSignOnTests(RegionsFixture regions) : BrowserTest(regions)
{
    [Fact]
    public async Task SignIn_AtEu_ThenUs_LandsSignedInWithoutPrompt()
    {
        // Arrange
        await SignInAtAsync(Regions.Eu, "eu");
        Navigations.Clear();

        // Act
        await Page.GotoAsync(At(Regions.Us, "/me"));

        // Assert
        await ExpectSignedInAsync(Regions.Us, "us");
        Assert.DoesNotContain(LoginPage.Path, Navigations.PathsAt(Regions.Identity));
        await Expect(Page.Locator("#amr")).ToHaveTextAsync("pwd");
    }

    [Fact]
    public async Task PromptLogin_WithSession_ShowsLoginFormAgain()
    {
        // Arrange
        await SignInAtAsync(Regions.Eu, "eu");

        // Act
        await Page.GotoAsync(At(Regions.Eu, "/prompt-login"));

        // Assert
        await ExpectLoginPageAsync();
        await Expect(Login.Email).ToBeVisibleAsync();
        await Expect(Login.Password).ToBeEmptyAsync();
        await Login.SignInAsync(RegionsFixture.UserEmail, Regions.UserPassword);
        await ExpectSignedInAsync(Regions.Eu, "eu");
    }

    [Fact]
    public async Task Logout_FromOne_EndsSsoForBoth()
    {
        // Arrange: signed in at eu, then at us through the SSO session.
        await SignInAtAsync(Regions.Eu, "eu");
        await Page.GotoAsync(At(Regions.Us, "/me"));
        await ExpectSignedInAsync(Regions.Us, "us");

        // Act: sign out at eu, and confirm at Identity.
        await SignOutAtAsync(Regions.Eu);

        // Assert: eu's own session is gone, and us (whose local cookie remains) cannot get a code without a new sign-in.
        Assert.DoesNotContain(await Context.CookiesAsync([Regions.Eu.AbsoluteUri]), c => c.Name == "regionsample-eu");
        await Page.GotoAsync(At(Regions.Us, "/signin"));
        await ExpectLoginPageAsync();
        await Expect(Login.Email).ToBeVisibleAsync();
    }
}
