"""Demo data for a realistic city (菏泽市, area code 0530), generated with a fixed random seed.

``seed_demo(engine)`` fills the department directory, about a hundred knowledge-base articles and
a few hundred historical tickets over the last months, each with the answered call it came from,
driven through the store's real workflow and call log (so every ticket has its history,
deadlines and supervision records). It is idempotent: departments and articles are matched by
name/title, tickets are only generated once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from hotline.calls import FinishedCall
from ticketing.context import StoreContext
from ticketing.models import Article, Department, Status, Ticket, utcnow
from ticketing.schemas import ActionParams, SystemActor
from ticketing.store import Store
from ticketing.workflow import TransitionError

SEED = 12345

DISTRICTS = [
    "牡丹区",
    "定陶区",
    "曹县",
    "单县",
    "成武县",
    "巨野县",
    "郓城县",
    "鄄城县",
    "东明县",
    "菏泽经济技术开发区",
    "菏泽高新区",
]
ROADS = [
    "中华路",
    "人民路",
    "和平路",
    "长江路",
    "黄河路",
    "丹阳路",
    "牡丹路",
    "重庆路",
    "八一路",
    "双河路",
    "解放街",
    "青年路",
    "广州路",
    "昆明路",
    "桂陵路",
    "西安路",
    "华英路",
    "南京路",
    "曹州路",
    "太原路",
]
COMPOUNDS = [
    "丽景花园",
    "牡丹苑",
    "天香公馆",
    "银座华府",
    "锦绣华城",
    "水岸名居",
    "恒大绿洲",
    "书香苑",
    "阳光新城",
    "花都小区",
    "翰林府",
    "兴业小区",
    "康庄小区",
    "和谐家园",
    "曹州府",
]
MARKETS = ["菜市场", "夜市", "商业街", "步行街", "农贸市场"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "秀英",
    "桂兰",
    "建国",
    "志强",
    "海燕",
    "玉兰",
    "春梅",
    "德胜",
]

# name, short name, duties (what matters it takes)
DEPARTMENTS = [
    (
        "菏泽市城市管理局",
        "城管局",
        "市容环境卫生、占道经营、户外广告、渣土运输、路灯照明、违法建设查处、油烟和夜间施工噪音",
    ),
    ("菏泽市水务集团有限公司", "水务集团", "城区供水、停水通知、自来水管道破裂抢修、水质、水费、排水管网"),
    (
        "菏泽市住房和城乡建设局",
        "住建局",
        "物业管理、电梯安全、老旧小区改造、建筑施工管理、房地产市场、燃气和供热行业监管",
    ),
    ("菏泽市交通运输局", "交通运输局", "公交线路、出租车管理、道路运输、公路养护、网约车"),
    ("菏泽市市场监督管理局", "市场监管局", "食品安全、消费维权、预付卡、价格监管、特种设备、营业执照"),
    ("菏泽市生态环境局", "生态环境局", "大气污染、水污染、工业噪声、固体废物、环境影响评价"),
    ("菏泽市公安局交通警察支队", "交警支队", "交通信号灯、交通违法处理、电动车上牌、机动车登记、交通秩序"),
    ("菏泽市公安局", "公安局", "户籍、居住证、身份证、社会治安、社会生活噪声（广场舞等）"),
    (
        "菏泽市人力资源和社会保障局",
        "人社局",
        "社会保险、就业失业、拖欠农民工工资、劳动争议、社保卡、养老金资格认证",
    ),
    ("菏泽市医疗保障局", "医保局", "医保参保缴费、医保报销、异地就医备案、定点医药机构"),
    ("菏泽市卫生健康委员会", "卫健委", "医疗机构管理、医患纠纷、疫苗接种、公共卫生"),
    ("菏泽市教育局", "教育局", "义务教育入学、学区划分、校外培训、校车安全"),
    ("菏泽市自然资源和规划局", "自然资源局", "不动产登记、规划审批、土地管理、违法占地"),
    ("菏泽市民政局", "民政局", "最低生活保障、特困供养、养老服务、婚姻登记、殡葬管理"),
    ("菏泽市住房公积金管理中心", "公积金中心", "住房公积金缴存、提取、贷款"),
    ("国网山东省电力公司菏泽供电公司", "供电公司", "供电抢修、停电通知、电费、用电报装"),
    ("菏泽华润燃气有限公司", "燃气公司", "燃气开户、燃气泄漏抢修、燃气费、入户安检"),
    ("菏泽市热力有限公司", "热力公司", "城区集中供暖、暖气不热报修、供暖收费"),
    ("菏泽市行政审批服务局", "行政审批局", "政务服务大厅、企业开办、证照办理、一窗受理"),
    ("菏泽市农业农村局", "农业农村局", "农业补贴、农村土地承包、农产品质量、动物防疫"),
    ("菏泽市应急管理局", "应急管理局", "安全生产、危险化学品、自然灾害救助、应急处置"),
    ("菏泽市文化和旅游局", "文旅局", "旅游投诉、文化市场、牡丹文化旅游节、A级景区"),
    ("菏泽市退役军人事务局", "退役军人事务局", "退役军人安置、优抚待遇、褒扬纪念"),
] + [
    (
        f"{d}人民政府" if not d.endswith("区") or d in ("牡丹区", "定陶区") else f"{d}管理委员会",
        d,
        f"{d}辖区内属地事项的协调办理",
    )
    for d in DISTRICTS
]


@dataclass(frozen=True)
class Scenario:
    category: str
    subcategory: str
    dept: str  # short name
    title: str
    course: str
    demand: str
    mode: str = "工单转办"
    emergency: bool = False
    weight: int = 3


SCENARIOS = [
    Scenario(
        "求助",
        "",
        "水务集团",
        "{compound}停水",
        "{district}{road}{compound}从{when}开始停水，没有接到停水通知，家里老人孩子用水困难",
        "尽快恢复供水，并说明停水原因和恢复时间",
        weight=6,
    ),
    Scenario(
        "求助",
        "",
        "水务集团",
        "{road}自来水管道破裂",
        "{road}与{road2}交叉口自来水管道破裂，路面大量积水，车辆和行人通行困难",
        "尽快派人抢修",
        mode="电话交办",
        weight=4,
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "城管局",
        "{road}工地夜间施工噪音扰民",
        "{road}{compound}旁边的工地每天晚上十一点以后还在施工，噪音扰民，影响居民休息",
        "要求停止夜间施工，依法处理",
        weight=5,
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "公安局",
        "{compound}广场舞噪音扰民",
        "{compound}门口广场每天晚上跳广场舞，音响声音很大，噪音扰民到十点以后",
        "协调降低音量，控制时间",
        weight=4,
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "城管局",
        "{road}{market}烧烤摊油烟扰民",
        "{road}{market}旁边烧烤摊每天晚上油烟很大，噪音扰民到凌晨",
        "取缔露天烧烤，治理油烟",
        weight=4,
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "城管局",
        "{road}{market}占道经营",
        "{road}{market}门口商贩占道经营，堵塞人行道和非机动车道",
        "清理占道经营",
    ),
    Scenario(
        "一般诉求",
        "",
        "城管局",
        "{road}路灯不亮",
        "{district}{road}{compound}附近一段路灯不亮好几天了，晚上出行不安全",
        "尽快维修路灯",
    ),
    Scenario(
        "求助",
        "",
        "城管局",
        "{road}井盖缺失",
        "{road}{compound}东门人行道上井盖缺失，容易有人掉进去",
        "尽快补齐井盖",
        mode="电话交办",
    ),
    Scenario(
        "一般诉求",
        "",
        "城管局",
        "{compound}垃圾未清运",
        "{compound}门口垃圾堆放多日无人清运，气味很大，招来蚊蝇",
        "及时清运垃圾",
    ),
    Scenario(
        "求助",
        "",
        "热力公司",
        "{compound}暖气不热",
        "{compound}{n}号楼供暖以来暖气一直不热，室温只有十四度",
        "尽快排查，保证供暖温度",
    ),
    Scenario(
        "求助",
        "",
        "燃气公司",
        "{compound}疑似燃气泄漏",
        "{compound}{n}号楼楼道里有很大的燃气味道，担心泄漏",
        "立即派人检查",
        mode="电话交办",
        emergency=True,
        weight=2,
    ),
    Scenario(
        "求助",
        "",
        "供电公司",
        "{compound}突然停电",
        "{compound}{n}号楼从{when}突然停电，没有接到停电通知",
        "尽快恢复供电",
    ),
    Scenario(
        "咨询",
        "",
        "公积金中心",
        "住房公积金提取咨询",
        "来电咨询租房提取住房公积金需要什么材料、多久到账",
        "告知办理条件和材料",
        mode="直接办理",
        weight=5,
    ),
    Scenario(
        "咨询",
        "",
        "医保局",
        "医保异地就医备案咨询",
        "来电咨询在外地住院如何办理医保异地就医备案",
        "告知办理渠道",
        mode="直接办理",
        weight=4,
    ),
    Scenario(
        "咨询",
        "",
        "人社局",
        "灵活就业人员社保缴费咨询",
        "来电咨询灵活就业人员养老保险缴费基数和缴费方式",
        "告知缴费标准",
        mode="直接办理",
        weight=4,
    ),
    Scenario(
        "投诉举报",
        "举报",
        "人社局",
        "{road}某工地拖欠农民工工资",
        "{district}{road}一处建筑工地拖欠二十多名农民工工资三个月，共计约四十万元",
        "要求尽快支付工资",
    ),
    Scenario(
        "投诉举报",
        "举报",
        "市场监管局",
        "{road}某饭店后厨卫生差",
        "{road}一家饭店后厨卫生条件差，有老鼠出没，食材随意堆放在地上",
        "依法查处",
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "市场监管局",
        "{road}健身房预付卡无法退费",
        "在{road}一家健身房办理了年卡，健身房突然关门，联系不上老板，预付卡无法退费",
        "协助退还余款",
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "住建局",
        "{compound}电梯经常故障",
        "{compound}{n}号楼电梯经常故障停运，多次困人，物业不及时维修",
        "督促物业维修电梯",
    ),
    Scenario(
        "建议",
        "",
        "交通运输局",
        "建议增加到{district}的公交线路",
        "{compound}附近居民多，建议开通或加密到{district}的公交线路，方便出行",
        "优化公交线路",
    ),
    Scenario(
        "投诉举报",
        "投诉",
        "交通运输局",
        "出租车拒载",
        "在{road}打车，出租车司机嫌路程短拒载，态度恶劣",
        "处理司机",
    ),
    Scenario(
        "咨询",
        "",
        "教育局",
        "小学入学学区咨询",
        "来电咨询{compound}对应的小学学区和入学报名时间",
        "告知学区划分",
        mode="直接办理",
    ),
    Scenario(
        "建议",
        "",
        "交警支队",
        "{road}与{road2}路口信号灯时长不合理",
        "{road}与{road2}路口左转信号灯时间太短，高峰期车辆排队很长",
        "调整信号灯配时",
    ),
    Scenario(
        "投诉举报",
        "举报",
        "城管局",
        "{compound}楼顶违法搭建",
        "{compound}{n}号楼顶楼业主在楼顶私自搭建彩钢房",
        "依法拆除违建",
    ),
    Scenario(
        "表扬",
        "",
        "水务集团",
        "表扬水务集团抢修人员",
        "{road}水管破裂后，水务集团抢修人员连夜施工，很快恢复供水，表示感谢",
        "转达感谢",
        weight=1,
    ),
]

# knowledge base: topic, department short name, materials, where, how long
KB_TOPICS = [
    (
        "住房公积金提取",
        "公积金中心",
        "身份证、银行卡、租房合同或购房合同",
        "“爱山东”APP或公积金中心服务大厅",
        "3个工作日",
    ),
    (
        "住房公积金贷款",
        "公积金中心",
        "身份证、婚姻证明、购房合同、收入证明",
        "公积金中心贷款窗口",
        "15个工作日",
    ),
    (
        "居住证办理",
        "公安局",
        "身份证、居住证明（房产证或租房合同）、近期照片",
        "居住地派出所户籍窗口",
        "15个工作日",
    ),
    ("身份证补办", "公安局", "户口簿、近期照片（现场采集）", "户籍所在地或异地派出所", "20个工作日"),
    ("新生儿落户", "公安局", "出生医学证明、父母户口簿和身份证、结婚证", "户籍所在地派出所", "当场办结"),
    ("医保参保缴费", "医保局", "身份证或社保卡", "“爱山东”APP、银行网点或社区", "即时到账"),
    (
        "医保异地就医备案",
        "医保局",
        "身份证、社保卡、异地居住或工作证明",
        "国家医保服务平台APP或医保窗口",
        "即时办结",
    ),
    ("社保卡办理", "人社局", "身份证、近期照片", "合作银行网点", "10个工作日"),
    (
        "失业保险金申领",
        "人社局",
        "身份证、社保卡、解除劳动合同证明",
        "人社局就业服务窗口或网上办理",
        "10个工作日",
    ),
    ("灵活就业人员社保缴费", "人社局", "身份证、户口簿", "人社局社保窗口或“爱山东”APP", "当月生效"),
    ("养老金资格认证", "人社局", "身份证或社保卡（人脸识别）", "手机APP自助认证或社区", "即时办结"),
    (
        "拖欠工资投诉",
        "人社局",
        "身份证、劳动合同或用工证明、考勤记录",
        "劳动保障监察大队",
        "20个工作日内处理",
    ),
    ("不动产登记", "自然资源局", "身份证、购房合同、完税证明", "不动产登记中心", "5个工作日"),
    ("城区集中供暖", "热力公司", "房屋产权证明、供暖缴费凭证", "热力公司客服大厅", "报修后24小时内上门"),
    ("停水通知和供水报修", "水务集团", "无需材料，提供详细地址", "水务集团24小时客服热线", "抢修2小时内到场"),
    ("燃气开户和报修", "燃气公司", "房产证明、身份证", "燃气公司营业厅", "报修30分钟内响应"),
    ("停电查询和用电报修", "供电公司", "户号或详细地址", "“网上国网”APP或95598", "城区45分钟内到场"),
    ("占道经营和油烟投诉", "城管局", "提供具体地点和时间段", "12345热线转办城管局", "5个工作日内处理"),
    ("夜间施工噪音", "城管局", "提供工地位置和施工时间", "12345热线转办", "3个工作日内处理"),
    ("社会生活噪声", "公安局", "提供具体地点和时间", "110或12345热线", "及时出警或转办"),
    ("公交线路和乘车", "交通运输局", "无需材料", "“菏泽公交”微信公众号", "即时查询"),
    ("出租车服务投诉", "交通运输局", "车牌号、乘车时间和地点、发票", "12345热线转办交通运输局", "10个工作日"),
    ("食品安全投诉举报", "市场监管局", "购物凭证、实物或照片", "12315平台或12345热线", "15个工作日"),
    ("预付卡消费维权", "市场监管局", "预付卡、合同、付款凭证", "12315平台或市场监管所", "15个工作日"),
    ("物业和电梯问题", "住建局", "提供小区名称和具体问题", "12345热线转办住建局", "10个工作日"),
    (
        "义务教育入学",
        "教育局",
        "户口簿、房产证或居住证、出生证明",
        "学区学校或教育局网上报名平台",
        "按年度招生时间",
    ),
    ("最低生活保障申请", "民政局", "身份证、户口簿、家庭收入证明", "户籍所在地街道或乡镇", "30个工作日"),
    ("电动自行车上牌", "交警支队", "身份证、购车发票、合格证", "交警车管所或指定登记点", "当场办结"),
    ("交通违法处理", "交警支队", "驾驶证、行驶证", "“交管12123”APP或交警大队", "即时办结"),
    ("营业执照办理", "行政审批局", "身份证、经营场所证明", "政务服务中心或“爱山东”APP", "1个工作日"),
]
KB_ASPECTS = ["办理条件", "所需材料", "办理渠道和时限", "常见问题"]


def _body(topic: str, dept: str, materials: str, where: str, limit: str, aspect: str, rnd: random.Random) -> str:
    if aspect == "办理条件":
        return (
            f"{topic}由{dept}负责。符合条件的市民均可申请，具体以{dept}最新政策文件为准。"
            f"答复要点：先核实来电人身份和诉求，再说明条件；不符合条件的，告知原因和其他途径。"
        )
    if aspect == "所需材料":
        return f"办理{topic}需准备：{materials}。材料为复印件的，需同时携带原件核验。"
    if aspect == "办理渠道和时限":
        return f"办理渠道：{where}。办理时限：{limit}。{dept}工作时间为工作日上午9:00-12:00，下午13:30-17:30。"
    tips = rnd.choice(
        [
            "节假日期间可通过网上渠道提交，工作日审核。",
            "如对办理结果有异议，可向{d}申请复核。",
            "办理进度可通过12345热线或{d}窗口查询。",
        ]
    ).format(d=dept)
    return f"市民常问：{topic}能否委托他人代办？答：可以，需提供委托书和双方身份证。{tips}"


def seed_demo(
    engine: sa.Engine, tickets: int = 300, now: datetime | None = None, seed: int = SEED, days: int = 120
) -> dict[str, int]:
    """Fill the demo city; returns how many departments, articles and tickets were added."""
    rnd = random.Random(seed)
    now = now or utcnow()
    clock = [now]
    svc = Store.on(StoreContext(engine, clock=lambda: clock[0]))
    admin = SystemActor("seed", "admin")
    added = {"departments": 0, "articles": 0, "tickets": 0}

    with Session(engine) as s:
        existing = {d.name: d.id for d in s.exec(select(Department))}
    for name, short, duties in DEPARTMENTS:
        if name in existing:
            continue
        road = rnd.choice(ROADS)
        d = svc.directory.save(
            {
                "name": name,
                "short_name": short,
                "duties": duties,
                "phones": f"0530-{rnd.randint(5000000, 5999999)}",
                "address": f"菏泽市牡丹区{road}{rnd.randint(1, 3000)}号",
                "hours": "工作日 9:00-12:00，13:30-17:30",
                "contact_person": f"{rnd.choice(SURNAMES)}{rnd.choice(['科长', '主任', '经理'])}",
                # reminders and supervision notes (log-only in the demo: no SMTP server is set)
                "notify_email": f"dept{len(existing) + 1:02d}@heze.example",
                "notify_mobile": f"1390530{len(existing) + 1:04d}",
            },
            admin,
        )
        existing[name] = d.id
        added["departments"] += 1
    by_short = {short: existing[name] for name, short, _ in DEPARTMENTS}

    with Session(engine) as s:
        titles = set(s.exec(select(Article.title)))
    for topic, dept, materials, where, limit in KB_TOPICS:
        for aspect in KB_ASPECTS:
            title = f"{topic}：{aspect}"
            if title in titles:
                continue
            svc.kb.save(
                {
                    "title": title,
                    "topic": topic,
                    "tags": f"{topic},{dept}",
                    "body": _body(topic, dept, materials, where, limit, aspect, rnd),
                    "department_id": by_short[dept],
                },
                admin,
            )
            added["articles"] += 1

    with Session(engine) as s:
        if s.exec(select(Ticket.id).where(Ticket.source == "demo").limit(1)).first() is not None:
            return added
    added["tickets"] = _tickets(svc, engine, rnd, clock, now, tickets, days, by_short)
    return added


def _phone(rnd: random.Random) -> str:
    if rnd.random() < 0.15:
        return f"0530{rnd.randint(5000000, 8999999)}"
    return f"1{rnd.choice('3578')}{rnd.randint(0, 9)}{rnd.randint(10000000, 99999999)}"


def _tickets(
    svc: Store,
    engine: sa.Engine,
    rnd: random.Random,
    clock: list[datetime],
    now: datetime,
    count: int,
    days: int,
    by_short: dict[str, int],
) -> int:
    repeaters = [_phone(rnd) for _ in range(max(3, count // 15))]
    weights = [s.weight for s in SCENARIOS]
    # more recent than old: a live centre has its open tickets in the last weeks
    starts = sorted(now - timedelta(seconds=3600 + (days * 86400 - 7200) * rnd.random() ** 1.6) for _ in range(count))
    operators = [SystemActor(f"80{n:02d}", "operator", job_number=f"{n:03d}") for n in range(1, 9)]
    lead = SystemActor("lead", "lead")
    ids = []
    for i, start in enumerate(starts):
        sc = rnd.choices(SCENARIOS, weights)[0]
        district = rnd.choice(DISTRICTS[:9])
        road, road2 = rnd.sample(ROADS, 2)
        slots = {
            "district": district,
            "road": road,
            "road2": road2,
            "compound": rnd.choice(COMPOUNDS),
            "market": rnd.choice(MARKETS),
            "n": rnd.randint(1, 30),
            "when": rnd.choice(["昨天早上", "前天晚上", "今天凌晨", "三天前"]),
        }
        number = rnd.choice(repeaters) if rnd.random() < 0.25 else _phone(rnd)
        confidential = sc.category == "投诉举报" and rnd.random() < 0.4
        clock[0] = start
        op = rnd.choice(operators)
        t = svc.tickets.create(
            {
                "category": sc.category,
                "subcategory": sc.subcategory,
                "handling_mode": sc.mode,
                "emergency": sc.emergency,
                "confidential": confidential,
                "caller_number": number,
                "caller_name": rnd.choice(SURNAMES) + rnd.choice(GIVEN),
                "district": district,
                "title": sc.title.format(**slots),
                "matter_place": f"{district}{road}" + (slots["compound"] if "{compound}" in sc.course else ""),
                "matter_time": slots["when"],
                "matter_course": sc.course.format(**slots),
                "matter_demand": sc.demand,
                "contact": number,
            },
            op,
        )
        ids.append(t.id)
        _call(svc, rnd, f"demo-{i}", number, start, op)
        svc.calls.link_ticket(f"demo-{i}", t.id)
        _progress(svc, rnd, clock, now, t.id, sc, by_short[sc.dept], lead, rnd.choice(operators))
    with Session(engine) as s:
        s.execute(sa.update(Ticket).where(Ticket.id.in_(ids)).values(source="demo"))
        s.commit()
    clock[0] = now
    svc.actions.sweep()  # near-deadline and overdue supervision, as the scheduler would have done
    return len(ids)


def _call(svc: Store, rnd: random.Random, uid: str, number: str, answered: datetime, op: SystemActor) -> None:
    """The answered call the ticket came from, into the call log as the bridge would have written it."""
    wait = rnd.choice([3.0, 5.0, 6.0, 8.0, 9.0, 12.0, 14.0, 21.0])
    talk = rnd.uniform(90, 420)
    at = answered.timestamp()
    seat = f"80{int(op.username[-2:]):02d}"
    svc.calls.record(FinishedCall(
        call_id=uid, caller_num=number, queue="hotline", seats_rung=(seat,), seat=seat, operator=op.username,
        job_number=op.job_number, offered_at=at - wait, answered_at=at, ended_at=at + talk,
        wait_ms=int(wait * 1000), within_rule=wait <= 15, talk_s=round(talk, 1),
    ))


def _progress(
    svc: Store,
    rnd: random.Random,
    clock: list[datetime],
    now: datetime,
    tid: int,
    sc: Scenario,
    dept_id: int,
    lead: SystemActor,
    op: SystemActor,
) -> None:
    """Walk one ticket along the workflow until its story reaches "now"."""
    dept = SystemActor(f"dept{dept_id}", "department", dept_id)

    def step(hours: float, action: str, actor: SystemActor, **params) -> bool:
        clock[0] = clock[0] + timedelta(hours=hours)
        if clock[0] > now:
            return False
        try:
            svc.actions.act(tid, action, ActionParams(**params), actor)
        except TransitionError:
            return False
        return True

    if sc.mode == "直接办理":
        step(0.1, "close_directly", op, result="已根据知识库答复来电人，来电人表示清楚")
        step(24 * rnd.randint(20, 40), "archive", lead)
        return
    opinion = "请按职责核实处理并答复来电人"
    if not step(rnd.uniform(0.2, 20), "transfer", op, department_id=dept_id, opinion=opinion):
        return
    if rnd.random() < 0.06:
        if not step(rnd.uniform(1, 20), "return", dept, reason="不属于本单位职责，建议转属地政府"):
            return
        opinion = "经核实属于贵单位职责，请办理"
        if not step(rnd.uniform(1, 10), "transfer", op, department_id=dept_id, opinion=opinion):
            return
    if not step(rnd.uniform(0.5, 30), "accept", dept) or not step(rnd.uniform(0.5, 24), "start", dept):
        return
    if rnd.random() < 0.08:
        if not step(rnd.uniform(24, 72), "request_extension", dept, reason="需协调多个单位", days=5):
            return
        if not step(rnd.uniform(2, 24), "approve_extension", lead):
            return
    if not step(rnd.uniform(24, 24 * 8), "reply", dept, result="已安排人员现场核实处理，并电话答复来电人"):
        return
    sat = rnd.choices(["非常满意", "满意", "基本满意", "不满意"], [3, 5, 2, 1])[0]
    if not step(rnd.uniform(2, 48), "callback", op, satisfaction=sat, result="来电人对处理结果的评价已记录"):
        return
    if sat == "不满意":
        if not step(rnd.uniform(1, 24), "redo", op):
            return
        if not step(rnd.uniform(24, 24 * 5), "reply", dept, result="重新核实处理，问题已解决"):
            return
        if not step(rnd.uniform(2, 48), "callback", op, satisfaction="满意", result="重办后满意"):
            return
    if not step(rnd.uniform(1, 24), "close", op):
        return
    step(24 * rnd.randint(20, 40), "archive", lead)


def demo_status(engine: sa.Engine) -> dict[str, int]:
    """Counts, for the CLI to print after seeding."""
    with Session(engine) as s:
        return {
            "departments": s.execute(sa.select(sa.func.count()).select_from(Department)).scalar_one(),
            "articles": s.execute(sa.select(sa.func.count()).select_from(Article)).scalar_one(),
            "tickets": s.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one(),
            "open": s.execute(
                sa.select(sa.func.count())
                .select_from(Ticket)
                .where(Ticket.status.not_in([Status.CLOSED, Status.ARCHIVED]))
            ).scalar_one(),
        }


def ticket_origins(engine: sa.Engine) -> dict[str, int]:
    """How many tickets the demo seeded and how many are real: production refuses demo data, and
    the seed refuses a database that holds real tickets."""
    with Session(engine) as s:
        demo = s.execute(sa.select(sa.func.count()).select_from(Ticket).where(Ticket.source == "demo")).scalar_one()
        total = s.execute(sa.select(sa.func.count()).select_from(Ticket)).scalar_one()
    return {"demo": int(demo), "real": int(total - demo)}
