using Identity.BrowserTests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Identity.BrowserTests;

/// <summary>Consent: a third-party client asks once and is remembered; a first-party client never asks.</summary>
public sealed class ConsentTests(RegionsFixture regions) : BrowserTest(regions)
{
    [Fact]
    public async Task Consent_ThirdParty_ShownOnceFirstPartyNever()
    {
        // Arrange / Act 1: first-party eu, with a sign-in: the only Identity page shown is the sign-in page.
        await SignInAtAsync(Regions.Eu, "eu");
        var shownForEu = Navigations.PathsAt(Regions.Identity);
        Navigations.Clear();

        // Act 2: the partner, in the same Identity session, asks for consent.
        await Page.GotoAsync(At(Regions.Partner, "/me"));
        await Expect(Consent.Heading(RegionsFixture.PartnerDisplayName)).ToBeVisibleAsync();
        await Expect(Consent.Deny).ToBeVisibleAsync();
        await Consent.Allow.ClickAsync();
        await ExpectSignedInAsync(Regions.Partner, "partner");

        // Act 3: the partner signs in again (its local session cleared): the consent is remembered.
        await Context.ClearCookiesAsync(new() { Name = "regionsample-partner" });
        Navigations.Clear();
        await Page.GotoAsync(At(Regions.Partner, "/me"));
        await ExpectSignedInAsync(Regions.Partner, "partner");

        // Assert
        Assert.Equal([LoginPage.Path], shownForEu);
        Assert.Empty(Navigations.PathsAt(Regions.Identity));
    }
}
