using Identity.Core.Policies;

namespace Identity.Core.UnitTests.Policies;

public sealed class PasswordRulesTests
{
    private static readonly PasswordPolicy Policy = new(); // 12 characters, common rejected, history 5

    /// <summary>A stand-in for the real (slow) hasher: a "hash" is the password behind a prefix.</summary>
    private static string Hash(string password) => "hash:" + password;

    private static bool Verify(string password, string hash) => hash == Hash(password);

    /// <summary>A password of exactly <paramref name="length"/> characters that is on no list ("xxxxxxxx" is).</summary>
    private static string OfLength(int length) => string.Concat(Enumerable.Repeat("q7$Zk", length / 5 + 1))[..length];

    private static IReadOnlyList<PasswordViolation> Check(string password, PasswordPolicy? policy = null, IEnumerable<string>? previous = null) =>
        PasswordRules.Check(password, policy ?? Policy, previous, Verify);

    [Theory]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(128)]
    public void Check_OneCharacterShorterThanMinimum_IsTooShort(int minimum)
    {
        var violations = Check(OfLength(minimum - 1), Policy with { MinimumLength = minimum });

        var violation = Assert.Single(violations);
        Assert.Equal(PasswordViolation.TooShortCode, violation.Code);
        Assert.Contains(minimum.ToString(System.Globalization.CultureInfo.InvariantCulture), violation.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(128)]
    public void Check_ExactlyMinimumLength_IsAccepted(int minimum)
    {
        Assert.Empty(Check(OfLength(minimum), Policy with { MinimumLength = minimum }));
    }

    [Fact]
    public void Check_Empty_IsTooShort()
    {
        Assert.Equal(PasswordViolation.TooShortCode, Assert.Single(Check("")).Code);
    }

    [Fact]
    public void Check_LengthCountsCodePointsNotUtf16Units_EmojiCountsOnce()
    {
        var elevenCharacters = "horsebatte" + "\U0001F40E"; // 10 + 1 code point, 12 UTF-16 units
        var twelveCharacters = elevenCharacters + "!";

        Assert.Equal(12, elevenCharacters.Length);
        Assert.Equal(PasswordViolation.TooShortCode, Assert.Single(Check(elevenCharacters)).Code);
        Assert.Empty(Check(twelveCharacters));
    }

    [Theory]
    [InlineData("password1")]
    [InlineData("PASSWORD1")]
    [InlineData("PassWord1")]
    [InlineData("qwertyuiop")]
    [InlineData("unbelievable")]
    [InlineData("UnBelievable")]
    public void Check_CommonPasswordInAnyCase_IsRejected(string password)
    {
        var violations = Check(password, Policy with { MinimumLength = 8 });

        Assert.Equal(PasswordViolation.CommonCode, Assert.Single(violations).Code);
    }

    [Fact]
    public void Check_CommonPasswordWithRejectCommonOff_IsAccepted()
    {
        Assert.Empty(Check("unbelievable", Policy with { RejectCommon = false }));
    }

    [Fact]
    public void Check_ShortAndCommon_ReportsBoth()
    {
        var codes = Check("password").Select(v => v.Code);

        Assert.Equal([PasswordViolation.TooShortCode, PasswordViolation.CommonCode], codes);
    }

    [Theory]
    [InlineData(0)] // the current password
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)] // the 5th most recent, the oldest one the history of 5 covers
    public void Check_ReuseOfAnyOfTheLastN_IsRejected(int changesAgo)
    {
        var previous = Enumerable.Range(0, 8).Select(i => Hash($"correct-horse-{i}")).ToList();

        var violations = Check($"correct-horse-{changesAgo}", previous: previous);

        var violation = Assert.Single(violations);
        Assert.Equal(PasswordViolation.ReusedCode, violation.Code);
    }

    [Fact]
    public void Check_ReuseOfThePasswordNPlusOneChangesAgo_IsAccepted()
    {
        var previous = Enumerable.Range(0, 8).Select(i => Hash($"correct-horse-{i}")).ToList();

        Assert.Empty(Check("correct-horse-5", previous: previous));
    }

    [Fact]
    public void Check_HistoryZero_AllowsReusingTheCurrentPassword()
    {
        Assert.Empty(Check("correct-horse-0", Policy with { History = 0 }, [Hash("correct-horse-0")]));
    }

    [Fact]
    public void Check_NoPreviousHashes_IsAccepted()
    {
        Assert.Empty(Check("correct-horse-battery", previous: null));
        Assert.Empty(Check("correct-horse-battery", previous: []));
    }

    [Fact]
    public void Check_PasswordBreakingAnotherRule_DoesNotVerifyHistory()
    {
        var verifications = 0;

        var violations = PasswordRules.Check("q7$Zk", Policy, [Hash("q7$Zk")], (p, h) => { verifications++; return Verify(p, h); });

        Assert.Equal(PasswordViolation.TooShortCode, Assert.Single(violations).Code);
        Assert.Equal(0, verifications);
    }

    [Fact]
    public void Check_History_VerifiesOnlyTheLastN()
    {
        var verified = new List<string>();

        PasswordRules.Check("correct-horse-battery", Policy with { History = 2 }, ["h0", "h1", "h2", "h3"],
            (_, hash) => { verified.Add(hash); return false; });

        Assert.Equal(["h0", "h1"], verified);
    }

    private static readonly DateTimeOffset ChangedAt = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void IsExpired_ExactlyAtMaximumAge_IsExpired()
    {
        var policy = Policy with { MaximumAge = TimeSpan.FromDays(90) };

        Assert.True(PasswordRules.IsExpired(ChangedAt, policy, ChangedAt.AddDays(90)));
    }

    [Fact]
    public void IsExpired_OneSecondBeforeMaximumAge_IsNotExpired()
    {
        var policy = Policy with { MaximumAge = TimeSpan.FromDays(90) };

        Assert.False(PasswordRules.IsExpired(ChangedAt, policy, ChangedAt.AddDays(90).AddSeconds(-1)));
    }

    [Fact]
    public void IsExpired_NoMaximumAge_NeverExpires()
    {
        Assert.False(PasswordRules.IsExpired(ChangedAt, Policy with { MaximumAge = null }, ChangedAt.AddYears(100)));
    }

    [Fact]
    public void IsExpired_ChangedInTheFuture_IsNotExpired()
    {
        var policy = Policy with { MaximumAge = TimeSpan.FromDays(1) };

        Assert.False(PasswordRules.IsExpired(ChangedAt.AddMinutes(5), policy, ChangedAt));
    }

    [Fact]
    public void IsExpired_ComparesInstantsNotLocalTimes()
    {
        var policy = Policy with { MaximumAge = TimeSpan.FromHours(1) };
        var sameInstantElsewhere = ChangedAt.AddHours(1).ToOffset(TimeSpan.FromHours(-5));

        Assert.True(PasswordRules.IsExpired(ChangedAt, policy, sameInstantElsewhere));
    }

    [Fact]
    public void CommonPasswords_EmbeddedList_HasTenThousandEntries()
    {
        Assert.Equal(10_000, CommonPasswords.Count);
        Assert.True(CommonPasswords.Contains("123456"));
        Assert.False(CommonPasswords.Contains("# The 10,000 most common passwords"));
    }
}
