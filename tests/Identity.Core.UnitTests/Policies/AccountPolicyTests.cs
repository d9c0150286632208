using Identity.Core.Policies;

namespace Identity.Core.UnitTests.Policies;

public sealed class AccountPolicyTests
{
    private static AccountPolicy Valid(string json)
    {
        var policy = AccountPolicy.Parse(json, out var errors);
        Assert.True(errors.Count == 0, string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        return Assert.IsType<AccountPolicy>(policy);
    }

    private static Dictionary<string, string[]> Invalid(string json)
    {
        var policy = AccountPolicy.Parse(json, out var errors);
        Assert.Null(policy);
        Assert.NotEmpty(errors);
        return errors;
    }

    [Fact]
    public void Parse_EmptyObject_GivesDefaults()
    {
        var policy = Valid("{}");

        Assert.Equal(MfaRequirement.Optional, policy.Mfa.Requirement);
        Assert.Equal([MfaFactor.Totp, MfaFactor.RecoveryCode, MfaFactor.Passkey], policy.Mfa.AllowedFactors);
        Assert.Equal(12, policy.Password.MinimumLength);
        Assert.True(policy.Password.RejectCommon);
        Assert.Equal(5, policy.Password.History);
        Assert.Null(policy.Password.MaximumAge);
        Assert.Equal(5, policy.Lockout.MaxFailedAttempts);
        Assert.Equal(TimeSpan.FromMinutes(15), policy.Lockout.Duration);
        Assert.Equal(TimeSpan.FromHours(8), policy.Session.Lifetime);
        Assert.Equal(TimeSpan.FromHours(1), policy.Session.IdleTimeout);
        Assert.Empty(policy.IpAllowList.Ranges);
        Assert.Equal(AccountPolicy.Default, policy);
    }

    [Fact]
    public void Parse_PartialSection_KeepsTheOtherDefaultsOfThatSection()
    {
        var policy = Valid("""{"password":{"minimumLength":14}}""");

        Assert.Equal(AccountPolicy.Default with { Password = new PasswordPolicy { MinimumLength = 14 } }, policy);
    }

    [Fact]
    public void Parse_CompleteDocument_ReadsEveryField()
    {
        var policy = Valid("""
            {
              "mfa": { "requirement": "requiredForAdmins", "allowedFactors": ["totp", "passkey"] },
              "password": { "minimumLength": 16, "rejectCommon": false, "history": 0, "maximumAge": "90.00:00:00" },
              "lockout": { "maxFailedAttempts": 10, "duration": "01:00:00" },
              "session": { "lifetime": "12:00:00", "idleTimeout": "00:30:00" },
              "ipAllowList": { "ranges": ["10.0.0.0/8", "2001:db8::/32"] }
            }
            """);

        Assert.Equal(new MfaPolicy { Requirement = MfaRequirement.RequiredForAdmins, AllowedFactors = [MfaFactor.Totp, MfaFactor.Passkey] }, policy.Mfa);
        Assert.Equal(new PasswordPolicy { MinimumLength = 16, RejectCommon = false, History = 0, MaximumAge = TimeSpan.FromDays(90) }, policy.Password);
        Assert.Equal(new LockoutPolicy { MaxFailedAttempts = 10, Duration = TimeSpan.FromHours(1) }, policy.Lockout);
        Assert.Equal(new SessionPolicy { Lifetime = TimeSpan.FromHours(12), IdleTimeout = TimeSpan.FromMinutes(30) }, policy.Session);
        Assert.Equal(["10.0.0.0/8", "2001:db8::/32"], policy.IpAllowList.Ranges);
    }

    [Fact]
    public void ToJson_Default_WritesEveryFieldInCamelCaseWithStringEnums()
    {
        Assert.Equal(
            """{"mfa":{"requirement":"optional","allowedFactors":["totp","recoveryCode","passkey"]}""" +
            ""","password":{"minimumLength":12,"rejectCommon":true,"history":5,"maximumAge":null,"selfServiceReset":true}""" +
            ""","lockout":{"maxFailedAttempts":5,"duration":"00:15:00"}""" +
            ""","session":{"lifetime":"08:00:00","idleTimeout":"01:00:00"}""" +
            ""","ipAllowList":{"ranges":[]}}""",
            AccountPolicy.Default.ToJson());
    }

    [Fact]
    public void ToJson_ThenParse_GivesTheSamePolicy()
    {
        var policy = AccountPolicy.Default with
        {
            Mfa = new MfaPolicy { Requirement = MfaRequirement.RequiredForEveryone, AllowedFactors = [MfaFactor.Passkey] },
            Password = new PasswordPolicy { MaximumAge = TimeSpan.FromDays(365) },
            IpAllowList = new IpAllowList { Ranges = ["192.0.2.0/24", "2001:db8::/48"] },
        };

        Assert.Equal(policy, Valid(policy.ToJson()));
    }

    [Theory]
    [InlineData("""{"password":{"minimumLength":8}}""")]
    [InlineData("""{"password":{"minimumLength":128}}""")]
    [InlineData("""{"password":{"history":0}}""")]
    [InlineData("""{"password":{"history":24}}""")]
    [InlineData("""{"password":{"maximumAge":"1.00:00:00"}}""")]
    [InlineData("""{"password":{"maximumAge":"3650.00:00:00"}}""")]
    [InlineData("""{"password":{"maximumAge":null}}""")]
    [InlineData("""{"lockout":{"maxFailedAttempts":3}}""")]
    [InlineData("""{"lockout":{"maxFailedAttempts":50}}""")]
    [InlineData("""{"lockout":{"duration":"00:01:00"}}""")]
    [InlineData("""{"lockout":{"duration":"1.00:00:00"}}""")]
    [InlineData("""{"session":{"lifetime":"00:05:00","idleTimeout":"00:05:00"}}""")] // idle == lifetime
    [InlineData("""{"session":{"lifetime":"30.00:00:00","idleTimeout":"30.00:00:00"}}""")]
    [InlineData("""{"session":{"idleTimeout":"08:00:00"}}""")] // == the default lifetime
    [InlineData("""{"mfa":{"requirement":"off","allowedFactors":[]}}""")]
    [InlineData("""{"mfa":{"requirement":"requiredForEveryone","allowedFactors":["passkey"]}}""")]
    [InlineData("""{"ipAllowList":{"ranges":[]}}""")]
    [InlineData("""{"ipAllowList":{"ranges":["0.0.0.0/0","::/0"]}}""")]
    public void Parse_ValueAtItsBoundary_IsAccepted(string json)
    {
        Valid(json);
    }

    [Theory]
    [InlineData("""{"password":{"minimumLength":7}}""", "password.minimumLength")]
    [InlineData("""{"password":{"minimumLength":129}}""", "password.minimumLength")]
    [InlineData("""{"password":{"minimumLength":"12"}}""", "password.minimumLength")]
    [InlineData("""{"password":{"minimumLength":12.5}}""", "password.minimumLength")]
    [InlineData("""{"password":{"rejectCommon":"yes"}}""", "password.rejectCommon")]
    [InlineData("""{"password":{"history":-1}}""", "password.history")]
    [InlineData("""{"password":{"history":25}}""", "password.history")]
    [InlineData("""{"password":{"maximumAge":"23:59:59"}}""", "password.maximumAge")]
    [InlineData("""{"password":{"maximumAge":"3650.00:00:01"}}""", "password.maximumAge")]
    [InlineData("""{"password":{"maximumAge":"90"}}""", "password.maximumAge")]
    [InlineData("""{"password":{"maximumAge":90}}""", "password.maximumAge")]
    [InlineData("""{"lockout":{"maxFailedAttempts":2}}""", "lockout.maxFailedAttempts")]
    [InlineData("""{"lockout":{"maxFailedAttempts":51}}""", "lockout.maxFailedAttempts")]
    [InlineData("""{"lockout":{"duration":"00:00:59"}}""", "lockout.duration")]
    [InlineData("""{"lockout":{"duration":"1.00:00:01"}}""", "lockout.duration")]
    [InlineData("""{"lockout":{"duration":"fifteen minutes"}}""", "lockout.duration")]
    [InlineData("""{"session":{"lifetime":"00:04:59"}}""", "session.lifetime")]
    [InlineData("""{"session":{"lifetime":"30.00:00:01"}}""", "session.lifetime")]
    [InlineData("""{"session":{"idleTimeout":"00:00:59"}}""", "session.idleTimeout")]
    [InlineData("""{"session":{"idleTimeout":"08:00:01"}}""", "session.idleTimeout")] // > the default lifetime
    [InlineData("""{"session":{"lifetime":"02:00:00","idleTimeout":"02:00:01"}}""", "session.idleTimeout")]
    [InlineData("""{"mfa":{"requirement":"required"}}""", "mfa.requirement")]
    [InlineData("""{"mfa":{"requirement":"RequiredForAdmins"}}""", "mfa.requirement")]
    [InlineData("""{"mfa":{"requirement":1}}""", "mfa.requirement")]
    [InlineData("""{"mfa":{"allowedFactors":"totp"}}""", "mfa.allowedFactors")]
    [InlineData("""{"mfa":{"allowedFactors":[]}}""", "mfa.allowedFactors")]
    [InlineData("""{"mfa":{"allowedFactors":["recoveryCode"]}}""", "mfa.allowedFactors")]
    [InlineData("""{"mfa":{"allowedFactors":["totp","sms"]}}""", "mfa.allowedFactors[1]")]
    [InlineData("""{"mfa":{"allowedFactors":["totp","totp"]}}""", "mfa.allowedFactors[1]")]
    [InlineData("""{"ipAllowList":{"ranges":"10.0.0.0/8"}}""", "ipAllowList.ranges")]
    [InlineData("""{"ipAllowList":{"ranges":["10.0.0.0/8","not-a-range"]}}""", "ipAllowList.ranges[1]")]
    [InlineData("""{"ipAllowList":{"ranges":["10.1.0.0/8"]}}""", "ipAllowList.ranges[0]")]
    [InlineData("""{"ipAllowList":{"ranges":["10.0.0.0"]}}""", "ipAllowList.ranges[0]")]
    [InlineData("""{"ipAllowList":{"ranges":[42]}}""", "ipAllowList.ranges[0]")]
    [InlineData("""{"password":null}""", "password")]
    [InlineData("""{"password":[]}""", "password")]
    [InlineData("""{"password":{"history":1,"history":2}}""", "password.history")]
    public void Parse_InvalidField_IsReportedAtItsPath(string json, string path)
    {
        var errors = Invalid(json);

        Assert.Equal([path], errors.Keys);
        Assert.NotEmpty(errors[path]);
    }

    [Fact]
    public void Parse_UnknownTopLevelProperty_IsAnError()
    {
        var errors = Invalid("""{"mfa":{},"passwords":{"minimumLength":14}}""");

        Assert.Equal(["Unknown property."], errors["passwords"]);
        Assert.Single(errors);
    }

    [Fact]
    public void Parse_UnknownNestedProperty_IsAnError()
    {
        var errors = Invalid("""{"mfa":{"policy":"required"}}""");

        Assert.Equal(["Unknown property."], errors["mfa.policy"]);
        Assert.Single(errors);
    }

    [Fact]
    public void Parse_MinimumLengthOutOfRange_SaysTheRange()
    {
        var errors = Invalid("""{"password":{"minimumLength":7}}""");

        Assert.Equal(["Must be an integer from 8 to 128."], errors["password.minimumLength"]);
    }

    [Fact]
    public void Parse_IdleTimeoutAboveLifetime_NamesTheLifetime()
    {
        var errors = Invalid("""{"session":{"lifetime":"02:00:00","idleTimeout":"03:00:00"}}""");

        Assert.Equal(["Must not exceed session.lifetime (02:00:00)."], errors["session.idleTimeout"]);
    }

    [Fact]
    public void Parse_InvalidLifetime_DoesNotAlsoReportTheIdleTimeout()
    {
        var errors = Invalid("""{"session":{"lifetime":"00:01:00","idleTimeout":"00:30:00"}}""");

        Assert.Equal(["session.lifetime"], errors.Keys);
    }

    [Fact]
    public void Parse_SeveralErrors_ReportsEveryOne()
    {
        var errors = Invalid("""
            {"password":{"minimumLength":4,"history":99},"lockout":{"duration":"bad"},"ipAllowList":{"ranges":["10.0.0.0/8","x","y"]},"extra":1}
            """);

        Assert.Equal(
            ["extra", "ipAllowList.ranges[1]", "ipAllowList.ranges[2]", "lockout.duration", "password.history", "password.minimumLength"],
            errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Parse_MoreThanOneHundredRanges_IsAnError()
    {
        var ranges = string.Join(",", Enumerable.Range(0, 101).Select(i => $"\"10.{i}.0.0/16\""));

        var errors = Invalid($$$"""{"ipAllowList":{"ranges":[{{{ranges}}}]}}""");

        Assert.Equal(["ipAllowList.ranges"], errors.Keys);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"password\":{}} trailing")]
    public void Parse_NotJson_IsReportedAtTheRoot(string json)
    {
        Assert.Equal(["$"], Invalid(json).Keys);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("\"{}\"")]
    public void Parse_NotAnObject_IsReportedAtTheRoot(string json)
    {
        Assert.Equal(["Must be a JSON object."], Invalid(json)["$"]);
    }
}
