using Identity.BrowserTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>Identity's sign-in page as a person meets it.</summary>
public sealed class LoginPageTests(RegionsFixture regions) : BrowserTest(regions)
{
    [Fact]
    public async Task WrongPassword_ShowsGenericError()
    {
        // Arrange
        await Page.GotoAsync(At(Regions.Eu, "/signin"));
        await ExpectLoginPageAsync();

        // Act: a wrong password for the existing user, then any password for an unknown one.
        await Login.SignInAsync(RegionsFixture.UserEmail, "Wrong-" + Regions.UserPassword);
        await Expect(Login.Failure).ToBeVisibleAsync();
        var pageForExistingUser = await Page.Locator("body").InnerTextAsync();

        await Login.SignInAsync("nobody@example.test", Regions.UserPassword);
        await Expect(Login.Failure).ToBeVisibleAsync();
        var pageForUnknownUser = await Page.Locator("body").InnerTextAsync();

        // Assert: the same words either way, and the form again, ready for another try.
        Assert.Equal(pageForExistingUser, pageForUnknownUser);
        await ExpectLoginPageAsync();
        await Expect(Login.Email).ToHaveAttributeAsync("autocomplete", "username");
        await Expect(Login.Password).ToHaveAttributeAsync("autocomplete", "current-password");
        await Expect(Login.Password).ToBeEmptyAsync();
        await Expect(Login.SignInButton).ToBeVisibleAsync();
    }
}
